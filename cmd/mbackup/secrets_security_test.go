package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/engine/backend/s3/s3test"
	"github.com/mbackup/mbackup/restore/jelastic/jelasticsim"
	"github.com/mbackup/mbackup/restore/staging/stagingtest"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

func relRandom(t *testing.T) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// relOutputs collects everything a test run printed or served.
type relOutputs struct {
	parts []string
	names []string
}

func (o *relOutputs) add(name string, text ...string) {
	for _, s := range text {
		o.parts = append(o.parts, s)
		o.names = append(o.names, name)
	}
}

// mustNotContain fails for every secret found in any output.
func (o *relOutputs) mustNotContain(t *testing.T, secrets map[string]string) {
	t.Helper()
	for what, secret := range secrets {
		for i, p := range o.parts {
			if strings.Contains(p, secret) {
				t.Errorf("%s leaked in the output of %s", what, o.names[i])
			}
		}
	}
}

// A full sequence of commands with distinctive secrets (repository
// password in a file, S3 secret key in an environment variable, database
// password in database_password_file for a role that has one, a password
// embedded in a database URL, the Jelastic token in a file), including
// failures, debug logging, JSON output, the service's logs, /status and
// /metrics: no output contains any secret.
func TestSecretsNeverPrinted(t *testing.T) {
	id := relRandom(t)
	secrets := map[string]string{
		"the repository password":              "REPO-PASSWORD-" + id,
		"the S3 secret key":                    "S3-SECRET-" + id,
		"the database password":                "DB-PASSWORD-" + id,
		"the password embedded in a URL":       "DB-URL-PASSWORD-" + id,
		"the Jelastic token":                   "JELASTIC-TOKEN-" + id,
		"a wrong Jelastic token":               "JELASTIC-WRONG-" + id,
		"a wrong repository password":          "REPO-WRONG-" + id,
		"a wrong S3 secret key":                "S3-WRONG-" + id,
		"the password in an unexpanded config": "CONFIG-PASSWORD-" + id,
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// An S3 server of our own, so that its secret key is ours.
	s3dir := t.TempDir()
	s3addr := freeAddr(t)
	bin, err := s3test.Binary()
	if err != nil {
		t.Fatal(err)
	}
	gw := exec.Command(bin, "--port", s3addr, "posix", s3dir)
	gw.Env = append(os.Environ(), "ROOT_ACCESS_KEY=relsecaccess", "ROOT_SECRET_KEY="+secrets["the S3 secret key"])
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Process.Kill(); gw.Wait() })
	relWaitHTTP(t, "http://"+s3addr+"/")
	t.Setenv("RELSEC_S3_ACCESS", "relsecaccess")
	t.Setenv("RELSEC_S3_SECRET", secrets["the S3 secret key"])

	// A Jelastic simulator of our own, so that its token is ours.
	simRoot := t.TempDir()
	sim, err := jelasticsim.New(jelasticsim.Config{Root: simRoot, PG: snapshottest.AdminURL(), Token: secrets["the Jelastic token"]})
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	simHandle := &stagingtest.Sim{Root: simRoot, URL: simSrv.URL + "/1.0", Admin: snapshottest.AdminURL()}
	prod := simHandle.NewProd(t, "client-sec", moodlegen.Tiny())
	stg := prod.Name + "-staging"

	// A login role with a password, reading production's database.
	role := "relsec_" + id
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, snapshottest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'; GRANT pg_read_all_data TO %s", role, secrets["the database password"], role)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })

	// Distinctive data, to look for in the repository's files.
	fileMarker := "PLAINTEXT-MARKER-FILE-" + id
	rowMarker := "PLAINTEXT-MARKER-ROW-" + id
	if err := os.WriteFile(filepath.Join(prod.Moodledata, "filedir", "marker.txt"), []byte(strings.Repeat(fileMarker+"\n", 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	snapshottest.ExecSQL(t, prod.DBURL, fmt.Sprintf("INSERT INTO mdl_config (name, value) VALUES ('relsec_marker', '%s')", rowMarker))

	pwFile := write("repo.key", secrets["the repository password"])
	dbPwFile := write("client.pgpass", secrets["the database password"])
	tokFile := write("jelastic.token", secrets["the Jelastic token"])
	bucketURL := "s3:http://" + s3addr + "/relsec-" + id + "/fleet"
	prodURL := strings.Replace(prod.DBURL, "postgres@", role+"@", 1)
	brokenURL := fmt.Sprintf("postgres://%s:%s@127.0.0.1:5432/%s_missing", role, secrets["the password embedded in a URL"], prod.DBName)
	cfgText := fmt.Sprintf(`timezone: Europe/Zurich
state_dir: %s
repository:
  url: %s
  password_file: %s
  s3:
    access_key_env: RELSEC_S3_ACCESS
    secret_key_env: RELSEC_S3_SECRET
jelastic:
  url: %s
  token_file: %s
defaults:
  retention: {last: 1}
environments:
  %s:
    database: %s
    database_password_file: %s
    moodledata: %s
    config_php: %s
    jelastic_env: %s
    staging:
      jelastic_env: %s
      database: %s
      moodledata: %s
      config_php: %s
      wwwroot: https://%s.example.ch
  client-broken:
    database: %s
    moodledata: %s
`, filepath.Join(dir, "state"), bucketURL, pwFile, simHandle.URL, tokFile,
		prod.Name, prodURL, dbPwFile, prod.Moodledata, prod.ConfigPHP, prod.Name,
		stg, stagingtest.DBURL(t, stagingtest.DBName(stg)), simHandle.Moodledata(stg), simHandle.ConfigPHP(stg), stg,
		brokenURL, t.TempDir())
	config := write("mbackup.yaml", cfgText)

	var outs relOutputs
	run1 := func(cfg string, args ...string) int {
		var out, errb bytes.Buffer
		code := run(append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb)
		outs.add("mbackup "+strings.Join(args, " "), out.String(), errb.String())
		relNoCrash(t, strings.Join(args, " "), out.String(), errb.String())
		t.Logf("mbackup %s: exit %d", strings.Join(args, " "), code)
		return code
	}
	mustOK := func(args ...string) {
		t.Helper()
		if code := run1(config, args...); code != 0 {
			t.Fatalf("mbackup %s: exit %d\n%s", strings.Join(args, " "), code, outs.parts[len(outs.parts)-1])
		}
	}
	mustFail := func(cfg string, args ...string) {
		t.Helper()
		if code := run1(cfg, args...); code == 0 {
			t.Errorf("mbackup %s succeeded, want a failure", strings.Join(args, " "))
		}
	}

	mustOK("init")
	mustOK("backup", prod.Name, "--json", "--verbose", "--time", relDay(1))
	mustOK("backup", prod.Name, "--time", relDay(2))
	mustOK("snapshots", "--json")
	mustOK("snapshots")
	mustOK("ls", prod.Name, "latest")
	mustOK("restore", prod.Name, "--target-dir", filepath.Join(t.TempDir(), "r"), "--json", "--verbose")
	mustOK("restore", prod.Name, "--dry-run", "--yes")
	mustOK("check", "--read-data", "--json")
	mustOK("forget", "--all", "--json")
	mustOK("prune", "--json")
	run1(config, "status", "--json")
	run1(config, "status")
	run1(config, "munin")
	run1(config, "staging", "refresh", prod.Name, "--dry-run", "--yes", "--verbose")
	mustFail(config, "backup", "client-broken", "--verbose")
	mustFail(config, "backup", "--all", "--json")

	// Failures that handle the secrets themselves.
	wrongTok := write("wrong.token", secrets["a wrong Jelastic token"])
	mustFail(write("wrong-token.yaml", strings.Replace(cfgText, tokFile, wrongTok, 1)), "staging", "refresh", prod.Name, "--dry-run", "--yes")
	wrongPw := write("wrong.key", secrets["a wrong repository password"])
	mustFail(write("wrong-pw.yaml", strings.Replace(cfgText, pwFile, wrongPw, 1)), "snapshots")
	mustFail(write("bad.yaml", strings.Replace(cfgText, "  password_file: "+pwFile, "  password_file: "+pwFile+"\n  password: "+secrets["the password in an unexpanded config"], 1)), "snapshots")
	mustFail(write("unset.yaml", strings.Replace(cfgText, "RELSEC_S3_SECRET", "RELSEC_S3_UNSET", 1)), "snapshots")
	t.Setenv("RELSEC_S3_WRONG", secrets["a wrong S3 secret key"])
	mustFail(write("wrong-s3.yaml", strings.Replace(cfgText, "RELSEC_S3_SECRET", "RELSEC_S3_WRONG", 1)), "backup", prod.Name, "--verbose")

	// The service: its logs of a scheduled backup, /status and /metrics.
	serveCfg := write("serve.yaml", strings.Replace(cfgText, "  retention: {last: 1}", "  retention: {last: 1}\n  schedule: \"@every 1s\"", 1))
	outs.add("mbackup serve", relServe(t, serveCfg)...)

	outs.mustNotContain(t, secrets)
	if len(outs.parts) < 40 {
		t.Errorf("only %d outputs collected", len(outs.parts))
	}

	// The repository (the S3 server's folder) holds no plaintext: neither
	// the data backed up nor any name or secret.
	plain := map[string]string{
		"a moodledata file's content": fileMarker,
		"a database row":              rowMarker,
		"config.php's password":       "prod-secret-Pa55",
		"the environment's name":      prod.Name,
		"the moodledata path":         prod.Moodledata,
		"the database name":           prod.DBName,
	}
	for k, v := range secrets {
		plain[k] = v
	}
	files := 0
	filepath.WalkDir(s3dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for what, s := range plain {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("repository file %s holds %s in plaintext", strings.TrimPrefix(p, s3dir), what)
			}
		}
		return nil
	})
	if files < 5 {
		t.Fatalf("only %d files in the S3 server's folder: looked in the wrong place?", files)
	}
	t.Logf("%d outputs and %d repository files searched", len(outs.parts), files)
}

// relServe runs `mbackup serve` until it has backed up once, fetches
// /status and /metrics, stops it with SIGTERM and returns all it printed
// and served.
func relServe(t *testing.T, config string) []string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(relBinary(t), "--config", config, "serve", "--listen", addr)
	cmd.Env = os.Environ()
	var out, errb lockedBuf
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var status string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		status = get("/status")
		if strings.Contains(status, `"last_success": "`) && strings.Contains(errb.String()+out.String(), `"job end"`) || strings.Contains(errb.String()+out.String(), "job end") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	metrics := get("/metrics")
	if !strings.Contains(metrics, "mbackup_") {
		t.Errorf("no mbackup metrics served:\n%.500s", metrics)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Error("serve did not stop within 30s of SIGTERM")
	}
	if !strings.Contains(errb.String()+out.String(), "job end") {
		t.Errorf("serve ran no backup job:\n%s", errb.String())
	}
	return []string{out.String(), errb.String(), status, metrics, get("/healthz")}
}

func relWaitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Configuration and secret files that group or others may read produce a
// warning naming the file; private ones do not.
func TestSecretFilesReadableByOthersWarn(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-modes", moodlegen.Tiny())
	f := newRelFleet(t, env)
	dbPw := filepath.Join(f.dir, "db.pgpass")
	if err := os.WriteFile(dbPw, []byte("whatever\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.envs = nil
	f.extra = ""
	text := f.yaml() + fmt.Sprintf("  %s:\n    database: %s\n    database_password_file: %s\n    moodledata: %s\n", env.Name, env.DBURL, dbPw, env.Moodledata)
	if err := os.WriteFile(f.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, errOut := f.run(t, "snapshots"); strings.Contains(errOut, "warning") {
		t.Fatalf("private files produce a warning:\n%s", errOut)
	}
	for _, p := range []string{f.config, f.pwFile, dbPw} {
		t.Run(filepath.Base(p), func(t *testing.T) {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(p, 0o600)
			code, _, errOut := f.run(t, "snapshots")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			want := "warning: " + p + " is accessible by group or others"
			if !strings.Contains(errOut, want) || !strings.Contains(errOut, "chmod 600") {
				t.Errorf("no warning for %s (mode 0644):\n%s", p, errOut)
			}
		})
	}
}

// The local repository format holds no plaintext either.
func TestLocalRepositoryHoldsNoPlaintext(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-plain", moodlegen.Tiny())
	marker := "PLAINTEXT-MARKER-" + relRandom(t)
	if err := os.WriteFile(filepath.Join(env.Moodledata, "filedir", "m.txt"), []byte(strings.Repeat(marker, 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	snapshottest.ExecSQL(t, env.DBURL, fmt.Sprintf("INSERT INTO mdl_config (name, value) VALUES ('marker', '%s-row')", marker))
	f := newRelFleet(t, env)
	f.mustRun(t, "backup", env.Name)
	n := 0
	filepath.WalkDir(f.repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		for _, s := range []string{marker, env.Name, env.DBName, env.Moodledata, relPassword} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds %q in plaintext", strings.TrimPrefix(p, f.repo), s)
			}
		}
		return nil
	})
	if n < 5 {
		t.Fatalf("only %d repository files", n)
	}
}

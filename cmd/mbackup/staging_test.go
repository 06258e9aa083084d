package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/restore/jelastic"
	"github.com/mbackup/mbackup/restore/staging"
	"github.com/mbackup/mbackup/restore/staging/stagingtest"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres/pgtest"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

var (
	stgDay1 = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	stgDay2 = stgDay1.Add(24 * time.Hour)
)

// stgFleet is production client-x-<random> in an in-process jelastic-sim,
// a local repository and a configuration file naming both.
type stgFleet struct {
	sim     *stagingtest.Sim
	prod    *stagingtest.Prod
	dir     string
	repoDir string
	config  string
	staging string // staging's Jelastic environment
	// dbPassword, when set, goes into database_password_file of
	// production and staging, and their URLs carry none.
	dbPassword string
}

func newStgFleet(t *testing.T) *stgFleet {
	t.Helper()
	return newStgFleetOn(t, stagingtest.NewSim(t), "")
}

// newStgFleetOn is newStgFleet with the simulator sim, whose databases
// mbackup reaches with dbPassword (none: the test server trusts).
func newStgFleetOn(t *testing.T, sim *stagingtest.Sim, dbPassword string) *stgFleet {
	t.Helper()
	f := &stgFleet{sim: sim, dir: t.TempDir(), dbPassword: dbPassword}
	f.prod = f.sim.NewProd(t, "client-x", moodlegen.Tiny())
	f.staging = f.prod.Name + "-staging"
	f.repoDir = filepath.Join(f.dir, "repo")
	be, err := local.Open(f.repoDir)
	if err != nil {
		t.Fatal(err)
	}
	snapshottest.NewRepo(t, be) // cheap key derivation; the CLI opens it with the password
	f.writeConfig(t, "")
	return f
}

// writeConfig writes mbackup.yaml; extra is appended to the staging block.
func (f *stgFleet) writeConfig(t *testing.T, stagingWWWRoot string) {
	t.Helper()
	pw := filepath.Join(f.dir, "repo.key")
	tok := filepath.Join(f.dir, "jelastic.token")
	for path, v := range map[string]string{pw: snapshottest.Password, tok: stagingtest.Token} {
		if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if stagingWWWRoot == "" {
		stagingWWWRoot = "https://" + f.staging + ".example.ch"
	}
	prodDB, stagingDB := f.prod.DBURL, f.sim.DBURL(t, stagingtest.DBName(f.staging))
	var prodPw, stagingPw string
	if f.dbPassword != "" {
		pwFile := filepath.Join(f.dir, "db.pgpass")
		if err := os.WriteFile(pwFile, []byte(f.dbPassword+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		prodDB, stagingDB = withoutPassword(t, prodDB), withoutPassword(t, stagingDB)
		prodPw = "\n    database_password_file: " + pwFile
		stagingPw = "\n      database_password_file: " + pwFile
	}
	cfg := fmt.Sprintf(`repository:
  url: %s
  password_file: %s
jelastic:
  url: %s
  token_file: %s
environments:
  %s:
    database: %s%s
    moodledata: %s
    config_php: %s
    jelastic_env: %s
    staging:
      jelastic_env: %s
      database: %s%s
      moodledata: %s
      config_php: %s
      wwwroot: %s
`, f.repoDir, pw, f.sim.URL, tok, f.prod.Name, prodDB, prodPw, f.prod.Moodledata, f.prod.ConfigPHP, f.prod.Name,
		f.staging, stagingDB, stagingPw, f.sim.Moodledata(f.staging), f.sim.ConfigPHP(f.staging), stagingWWWRoot)
	f.config = filepath.Join(f.dir, "mbackup.yaml")
	if err := os.WriteFile(f.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withoutPassword returns a database URL without its password.
func withoutPassword(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// mbackup runs the CLI in-process.
func (f *stgFleet) mbackup(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"--config", f.config}, args...), strings.NewReader(""), &out, &errb)
	for _, secret := range []string{stagingtest.Token, snapshottest.Password, f.dbPassword} {
		if secret == "" {
			continue
		}
		if strings.Contains(out.String()+errb.String(), secret) {
			t.Errorf("mbackup %s printed a secret", strings.Join(args, " "))
		}
	}
	return code, out.String(), errb.String()
}

func (f *stgFleet) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := f.mbackup(t, args...)
	if code != 0 {
		t.Fatalf("mbackup %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// backupTwice backs production up on day 1, uses it for a day, backs it
// up again, and returns production's state at day 1 (database digest and
// files minus excludes).
func (f *stgFleet) backupTwice(t *testing.T) (moodlegen.Digest, map[string]string) {
	t.Helper()
	f.mustRun(t, "backup", f.prod.Name, "--time", stgDay1.Format(time.RFC3339))
	db1, err := moodlegen.DatabaseDigest(context.Background(), f.prod.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	files1, err := moodlegen.TreeDigest(f.prod.Moodledata, snapshot.DefaultExclude())
	if err != nil {
		t.Fatal(err)
	}
	f.prod.Mutate(t, 11)
	f.mustRun(t, "backup", f.prod.Name, "--time", stgDay2.Format(time.RFC3339))
	now, err := moodlegen.DatabaseDigest(context.Background(), f.prod.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(stagingtest.Unsanitized(db1).Diff(stagingtest.Unsanitized(now))) == 0 {
		t.Fatal("the day of use changed no unsanitized table: the test would prove nothing")
	}
	return db1, files1
}

// checkCopy asserts that a copy holds day 1's data, sanitized, with its
// config.php pointing at itself and the cp nodes restarted once.
func (f *stgFleet) checkCopy(t *testing.T, env, wwwroot string, db1 moodlegen.Digest, files1 map[string]string) {
	t.Helper()
	ctx := context.Background()
	dbURL := f.sim.DBURL(t, stagingtest.DBName(env))
	got, err := moodlegen.DatabaseDigest(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if d := stagingtest.Unsanitized(db1).Diff(stagingtest.Unsanitized(got)); len(d) > 0 {
		t.Errorf("%s's database is not day 1's: %s", env, strings.Join(d, "; "))
	}
	files, err := moodlegen.TreeDigest(f.sim.Moodledata(env), append(snapshot.DefaultExclude(), "muc", "saml2"))
	if err != nil {
		t.Fatal(err)
	}
	for k := range files1 {
		if k == "muc" || k == "saml2" || strings.HasPrefix(k, "muc/") || strings.HasPrefix(k, "saml2/") {
			delete(files1, k)
		}
	}
	if d := moodlegen.DiffTrees(files1, files); len(d) > 0 {
		t.Errorf("%s's moodledata is not day 1's: %s", env, strings.Join(d[:min(10, len(d))], "; "))
	}
	cfg, err := os.ReadFile(f.sim.ConfigPHP(env))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"$CFG->dbname    = '" + stagingtest.DBName(env) + "';",
		"$CFG->wwwroot   = '" + wwwroot + "';",
		"$CFG->dataroot  = '" + f.sim.Moodledata(env) + "';",
		"$CFG->noemailever = true;",
		"'*' => ['disabled' => 1],",
	} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("%s's config.php lacks %s:\n%s", env, want, cfg)
		}
	}
	if strings.Contains(string(cfg), "'"+f.prod.DBName+"'") || strings.Contains(string(cfg), f.prod.WWWRoot+"'") {
		t.Errorf("%s's config.php still names production:\n%s", env, cfg)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for sql, want := range map[string]int64{
		"SELECT count(*) FROM mdl_sessions":                                                    0,
		"SELECT count(*) FROM mdl_external_tokens":                                             0,
		"SELECT count(*) FROM mdl_task_adhoc":                                                  0,
		"SELECT count(*) FROM mdl_config WHERE name = 'noemailever' AND value = '1'":           1,
		"SELECT count(*) FROM mdl_task_scheduled WHERE disabled = 0 AND classname <> ALL ($1)": 0,
	} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = append(args, staging.DefaultAllowedTasks())
		}
		var n int64
		if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s: %s = %d, want %d", env, sql, n, want)
		}
	}
	if n := f.sim.Restarts(t, env, "cp"); n != 1 {
		t.Errorf("%s's cp nodes restarted %d times, want 1", env, n)
	}
	if _, err := os.Stat(filepath.Join(f.sim.Moodledata(env), "climaintenance.html")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left in maintenance mode", env)
	}
}

// The Must show of the staging issue: back up client-x, change
// production, refresh staging at the first snapshot.
func TestStagingRefreshCLI(t *testing.T) {
	f := newStgFleet(t)
	db1, files1 := f.backupTwice(t)
	prodBefore := f.prod.Capture(t)
	at := stgDay1.Format(time.RFC3339)

	// Dry run first: a plan, and nothing exists afterwards.
	out := f.mustRun(t, "staging", "refresh", f.prod.Name, "--at", at, "--dry-run")
	if !strings.Contains(out, "plan: staging refresh") || !strings.Contains(out, "clone "+f.prod.Name+" to "+f.staging) {
		t.Errorf("dry run output:\n%s", out)
	}
	if _, err := os.Stat(f.sim.EnvDir(f.staging)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a dry run created staging")
	}

	// Without --yes and without a terminal: refused, nothing done.
	if code, _, errOut := f.mbackup(t, "staging", "refresh", f.prod.Name, "--at", at); code != 2 || !strings.Contains(errOut, "--yes") {
		t.Errorf("unconfirmed refresh: exit %d, %s", code, errOut)
	}

	out = f.mustRun(t, "staging", "refresh", f.prod.Name, "--at", at, "--yes")
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "using snapshot ") || !strings.Contains(lines[0], "2026-11-26") {
		t.Errorf("the chosen snapshot is not printed first:\n%s", out)
	}
	for _, want := range []string{": ok in ", "[clone] cloned", "[config.php] config.php: set $CFG->dbname", "[sanitize] mdl_sessions: deleted",
		"[restart] restarted", "is ready at https://" + f.staging + ".example.ch"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	f.checkCopy(t, f.staging, "https://"+f.staging+".example.ch", db1, files1)
	f.prod.Capture(t).MustEqual(t, prodBefore, "after staging refresh")

	// --reclone, as JSON.
	_, _, _ = f.mbackup(t, "snapshots") // a read between runs must not disturb anything
	code, jsonOut, errOut := f.mbackup(t, "--json", "staging", "refresh", f.prod.Name, "--at", at, "--reclone", "--yes")
	if code != 0 {
		t.Fatalf("--reclone: exit %d: %s", code, errOut)
	}
	var rep staging.Report
	if err := json.Unmarshal([]byte(jsonOut), &rep); err != nil {
		t.Fatalf("--json output is not one report: %v\n%s", err, jsonOut)
	}
	if rep.Status != staging.StatusOK || len(rep.Steps) < 2 || rep.Steps[0].Name != "delete" || rep.Steps[1].Name != "clone" {
		t.Errorf("--reclone report: %+v", rep)
	}
	if !strings.Contains(errOut, "using snapshot") {
		t.Errorf("with --json the chosen snapshot goes to stderr: %q", errOut)
	}
	f.checkCopy(t, f.staging, "https://"+f.staging+".example.ch", db1, files1)
	f.prod.Capture(t).MustEqual(t, prodBefore, "after --reclone")
}

func TestStagingRefreshRefusedCLI(t *testing.T) {
	f := newStgFleet(t)
	f.mustRun(t, "backup", f.prod.Name)
	prodBefore := f.prod.Capture(t)

	// The configuration itself refuses staging == production.
	good, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, from, to string }{
		{"jelastic_env", "jelastic_env: " + f.staging, "jelastic_env: " + f.prod.Name},
		{"database", "/" + stagingtest.DBName(f.staging) + "\n", "/" + f.prod.DBName + "\n"},
		{"moodledata", f.sim.Moodledata(f.staging), f.prod.Moodledata},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(string(good), tt.from, tt.to, 1)
			if bad == string(good) {
				t.Fatalf("%q not in the configuration", tt.from)
			}
			if err := os.WriteFile(f.config, []byte(bad), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := f.mbackup(t, "staging", "refresh", f.prod.Name, "--yes")
			if code != 2 || !strings.Contains(errOut, tt.name) {
				t.Errorf("exit %d, %s", code, errOut)
			}
		})
	}
	if err := os.WriteFile(f.config, good, 0o600); err != nil {
		t.Fatal(err)
	}

	// The refresh refuses a staging URL on production's host.
	f.writeConfig(t, f.prod.WWWRoot+"/staging")
	code, _, errOut := f.mbackup(t, "staging", "refresh", f.prod.Name, "--yes")
	if code != 2 || !strings.Contains(errOut, "production's host") {
		t.Errorf("staging wwwroot on production's host: exit %d, %s", code, errOut)
	}
	if code, _, errOut := f.mbackup(t, "staging", "refresh", "no-such-env", "--yes"); code != 2 {
		t.Errorf("unknown environment: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(f.sim.EnvDir(f.staging)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused refresh created staging")
	}
	f.prod.Capture(t).MustEqual(t, prodBefore, "after refused refreshes")
}

// A refresh that fails half-way (the repository lost its data after the
// clone was made) leaves staging marked broken and production untouched.
func TestStagingRefreshBrokenCLI(t *testing.T) {
	f := newStgFleet(t)
	f.mustRun(t, "backup", f.prod.Name)
	prodBefore := f.prod.Capture(t)
	if err := os.RemoveAll(filepath.Join(f.repoDir, "data")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := f.mbackup(t, "staging", "refresh", f.prod.Name, "--yes")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "is BROKEN (failed at restore)") || !strings.Contains(errOut, "broken") {
		t.Errorf("broken staging not reported:\n%s\n%s", out, errOut)
	}
	page, err := os.ReadFile(filepath.Join(f.sim.Moodledata(f.staging), "climaintenance.html"))
	if err != nil || !strings.Contains(string(page), "do not test on it") {
		t.Errorf("staging not marked broken: %v", err)
	}
	cfg, _ := os.ReadFile(f.sim.ConfigPHP(f.staging))
	if !strings.Contains(string(cfg), "'"+stagingtest.DBName(f.staging)+"'") || !strings.Contains(string(cfg), "$CFG->noemailever = true;") {
		t.Errorf("broken staging's config.php does not point at staging:\n%s", cfg)
	}
	f.prod.Capture(t).MustEqual(t, prodBefore, "after a failed refresh")
}

func TestSideRestoreCLI(t *testing.T) {
	f := newStgFleet(t)
	db1, files1 := f.backupTwice(t)
	prodBefore := f.prod.Capture(t)
	clone := f.prod.Name + "-copy"
	at := stgDay1.Format(time.RFC3339)

	for _, bad := range [][]string{
		{"--clone", clone, "--to", f.prod.Name},
		{"--clone", clone, "--db-only"},
		{"--clone-moodledata", "/tmp/x"},
		{"--clone", f.staging},
		{"--clone", "-bad-name"},
	} {
		args := append([]string{"restore", f.prod.Name, "--yes"}, bad...)
		if code, _, errOut := f.mbackup(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", bad, code, errOut)
		}
	}

	out := f.mustRun(t, "restore", f.prod.Name, "--at", at, "--clone", clone, "--dry-run")
	if !strings.Contains(out, "plan: side restore") || !strings.Contains(out, "$CFG->wwwroot = 'https://"+clone+".sim.local'") {
		t.Errorf("dry run output:\n%s", out)
	}
	if _, err := os.Stat(f.sim.EnvDir(clone)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a dry run created the clone")
	}

	out = f.mustRun(t, "restore", f.prod.Name, "--at", at, "--clone", clone, "--yes")
	if !strings.HasPrefix(out, "using snapshot ") || !strings.Contains(out, "side restore of "+f.prod.Name) {
		t.Errorf("output:\n%s", out)
	}
	info, err := f.sim.Client().GetEnvInfo(context.Background(), clone)
	if err != nil || info.Status != jelastic.StatusRunning {
		t.Fatalf("clone: %+v, %v", info, err)
	}
	f.checkCopy(t, clone, "https://"+info.Domain, db1, files1)
	f.prod.Capture(t).MustEqual(t, prodBefore, "after a side restore")

	// The clone exists now: a second side restore to it is refused.
	if code, _, errOut := f.mbackup(t, "restore", f.prod.Name, "--clone", clone, "--yes"); code != 2 || !strings.Contains(errOut, "exists already") {
		t.Errorf("side restore into an existing environment: exit %d: %s", code, errOut)
	}
}

// Jelastic's databases ask for passwords; the shared test server does not.
// On a server that checks them (scram-sha-256), with the password only in
// the database_password_file of production and of staging: a staging
// refresh (restore into the clone, sanitizing, pointing it at itself) and
// a side restore (whose clone inherits production's password) give day 1's
// data, sanitized, and leave production as it was.
func TestStagingWithPasswordsCLI(t *testing.T) {
	srv := pgtest.Start(t)
	t.Setenv("PGPASSWORD", "")
	os.Unsetenv("PGPASSWORD")
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	f := newStgFleetOn(t, stagingtest.NewSimOn(t, srv.AdminURL()), srv.Password)
	db1, files1 := f.backupTwice(t)
	prodBefore := f.prod.Capture(t)
	at := stgDay1.Format(time.RFC3339)

	f.mustRun(t, "staging", "refresh", f.prod.Name, "--at", at, "--yes")
	f.checkCopy(t, f.staging, "https://"+f.staging+".example.ch", db1, files1)
	f.prod.Capture(t).MustEqual(t, prodBefore, "after staging refresh")

	clone := f.prod.Name + "-copy"
	f.mustRun(t, "restore", f.prod.Name, "--at", at, "--clone", clone, "--yes")
	info, err := f.sim.Client().GetEnvInfo(context.Background(), clone)
	if err != nil {
		t.Fatal(err)
	}
	f.checkCopy(t, clone, "https://"+info.Domain, db1, files1)
	f.prod.Capture(t).MustEqual(t, prodBefore, "after a side restore")

	// A wrong password for staging: refused in one line that says where
	// the password comes from; production untouched.
	if err := os.WriteFile(filepath.Join(f.dir, "db.pgpass"), []byte(srv.Password+"-wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := f.mbackup(t, "staging", "refresh", f.prod.Name, "--at", at, "--yes")
	if code != 1 || !strings.Contains(errOut, "password authentication failed") || !strings.Contains(errOut, "check database_password_file of "+f.prod.Name+"'s staging block") {
		t.Errorf("refresh with a wrong password: exit %d, want 1 and the server's refusal:\n%s", code, errOut)
	}
	f.prod.Capture(t).MustEqual(t, prodBefore, "after a refused refresh")
}

package main

// Shared by the reliability tests of this package (*_fault_test.go,
// *_badinput_test.go, *_security_test.go): a fleet configuration on the
// real PostgreSQL with a repository, the CLI run in-process or as a built
// binary, and byte-exact verification of snapshots through
// `restore --target-dir`.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// relPassword protects the repositories of these tests.
const relPassword = "reliability test password"

// relBuild builds mbackup once per test binary: crash, concurrency and
// service tests need real processes to kill, signal and run side by side.
var relBuild = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mbackup-reliability-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mbackup")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func relBinary(t *testing.T) string {
	t.Helper()
	bin, err := relBuild()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// relFleet is a configuration file naming environments and a repository.
type relFleet struct {
	dir    string
	config string
	repo   string // repository.url
	pwFile string
	envs   []*snapshottest.Env
	repoS3 string // appended to the repository block
	extra  string // appended to the configuration
}

// newRelFleet writes a configuration for envs with a local repository,
// initialised with a cheap key derivation so that every command opens it
// quickly (the CLI's own init is tested where it matters).
func newRelFleet(t *testing.T, envs ...*snapshottest.Env) *relFleet {
	t.Helper()
	f := &relFleet{dir: t.TempDir(), envs: envs}
	f.repo = filepath.Join(f.dir, "repo")
	be, err := local.Open(f.repo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := engine.Init(context.Background(), be, relPassword, engine.InitOptions{}, snapshottest.TestOptions())
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	f.pwFile = filepath.Join(f.dir, "repo.key")
	if err := os.WriteFile(f.pwFile, []byte(relPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.config = filepath.Join(f.dir, "mbackup.yaml")
	f.write(t)
	return f
}

// yaml returns the configuration text.
func (f *relFleet) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "timezone: Europe/Zurich\nstate_dir: %s\n", filepath.Join(f.dir, "state"))
	fmt.Fprintf(&b, "repository:\n  url: %s\n  password_file: %s\n", f.repo, f.pwFile)
	b.WriteString(f.repoS3)
	b.WriteString("defaults:\n  retention: {last: 3}\n")
	b.WriteString(f.extra)
	b.WriteString("environments:\n")
	for _, e := range f.envs {
		fmt.Fprintf(&b, "  %s:\n    database: %s\n    moodledata: %s\n    config_php: %s\n", e.Name, e.DBURL, e.Moodledata, e.ConfigPHP)
	}
	return b.String()
}

func (f *relFleet) write(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(f.config, []byte(f.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// run runs the CLI in-process.
func (f *relFleet) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"--config", f.config}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// mustRun runs the CLI in-process and fails the test unless it exits 0.
func (f *relFleet) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := f.run(t, args...)
	if code != 0 {
		t.Fatalf("mbackup %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// command prepares the built binary bin against the fleet's
// configuration.
func (f *relFleet) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, append([]string{"--config", f.config}, args...)...)
	cmd.Env = os.Environ()
	return cmd
}

// relSnapshot is one element of `snapshots --json`.
type relSnapshot struct {
	ID   string `json:"id"`
	Env  string `json:"env"`
	Time string `json:"time"`
}

func (f *relFleet) snapshots(t *testing.T) []relSnapshot {
	t.Helper()
	var sns []relSnapshot
	if err := json.Unmarshal([]byte(f.mustRun(t, "snapshots", "--json")), &sns); err != nil {
		t.Fatal(err)
	}
	return sns
}

// relState is what a snapshot of an environment must give back: its
// database as a plain dump and its moodledata minus the excludes.
type relState struct {
	dump  []byte
	files map[string]string
}

func captureRel(t *testing.T, e *snapshottest.Env) relState {
	t.Helper()
	st, err := relCapture(e)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// relCapture is captureRel for goroutines other than the test's.
func relCapture(e *snapshottest.Env) (relState, error) {
	dump, err := relSortedDump(e.DBURL)
	if err != nil {
		return relState{}, err
	}
	files, err := moodlegen.TreeDigest(e.Moodledata, snapshot.DefaultExclude())
	if err != nil {
		return relState{}, err
	}
	return relState{dump: dump, files: files}, nil
}

// relSortedDump is the plain dump with its lines sorted: a database that
// was updated stores rows in another physical order than a fresh copy
// loaded from its dump, and pg_dump writes them in that order. Every
// statement and every row must still match exactly. The random
// \restrict lines of recent pg_dump versions are left out.
func relSortedDump(url string) ([]byte, error) {
	out, err := exec.Command("pg_dump", "--format=plain", "--dbname="+url).Output()
	if err != nil {
		return nil, fmt.Errorf("pg_dump: %w", err)
	}
	var lines [][]byte
	for _, l := range bytes.Split(out, []byte("\n")) {
		if bytes.HasPrefix(l, []byte(`\restrict `)) || bytes.HasPrefix(l, []byte(`\unrestrict `)) {
			continue
		}
		lines = append(lines, l)
	}
	slices.SortFunc(lines, bytes.Compare)
	return bytes.Join(lines, []byte("\n")), nil
}

// verifySnapshot restores snapshot id of env into a folder with the CLI,
// loads db.sql into a scratch database with psql and compares both with
// want, byte for byte.
func (f *relFleet) verifySnapshot(t *testing.T, env *snapshottest.Env, id string, want relState) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restore")
	f.mustRun(t, "restore", env.Name, "--snapshot", id, "--target-dir", dir, "--yes")
	files, err := moodlegen.TreeDigest(filepath.Join(dir, "moodledata"), snapshot.DefaultExclude())
	if err != nil {
		t.Fatal(err)
	}
	if d := moodlegen.DiffTrees(want.files, files); len(d) > 0 {
		if len(d) > 10 {
			d = d[:10]
		}
		t.Errorf("snapshot %s of %s: moodledata differs:\n%s", id[:8], env.Name, strings.Join(d, "\n"))
	}
	scratch := env.DBName + "_v" + id[:8]
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, snapshottest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+scratch+" TEMPLATE template0"); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(ctx, "DROP DATABASE IF EXISTS "+scratch+" WITH (FORCE)")
	url, err := moodlegen.DatabaseURL(snapshottest.AdminURL(), scratch)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", filepath.Join(dir, "db.sql")).CombinedOutput(); err != nil {
		t.Fatalf("psql -f db.sql of snapshot %s: %v\n%s", id[:8], err, out)
	}
	got, err := relSortedDump(url)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.dump) {
		t.Errorf("snapshot %s of %s: database differs from the state at backup time", id[:8], env.Name)
	}
}

// relNoCrash fails the test when output shows a Go crash instead of an error
// message.
func relNoCrash(t *testing.T, what string, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		for _, bad := range []string{"goroutine ", "panic:", "runtime error", "[signal "} {
			if strings.Contains(o, bad) {
				t.Errorf("%s: output shows a crash (%q):\n%s", what, bad, o)
			}
		}
	}
}

// relLines returns the non-empty lines of stderr.
func relLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// relDay is the snapshot time of the n-th backup of a test, so that
// snapshots sort in the order they were taken.
func relDay(n int) string {
	return time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour).Format(time.RFC3339)
}

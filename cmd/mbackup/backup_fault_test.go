package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend/faultproxy"
	"github.com/mbackup/mbackup/engine/backend/s3"
	"github.com/mbackup/mbackup/engine/backend/s3/s3test"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/postgres/pgtest"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// The database server ends pg_dump's session while it streams table data,
// by pg_terminate_backend on the shared server or by a real restart of a
// private one (which also ends mbackup's own session holding the dump's
// snapshot): `mbackup backup` exits 1, names the environment and
// pg_dump's error, commits nothing, and the next backup succeeds.
func TestPgDumpDiesMidStreamCLI(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := map[bool]string{false: "session terminated", true: "server restarted"}[restart]
		t.Run(name, func(t *testing.T) { testPgDumpDies(t, restart) })
	}
}

func testPgDumpDies(t *testing.T, restart bool) {
	admin := snapshottest.AdminURL()
	var srv *pgtest.Server
	if restart {
		srv = pgtest.Start(t)
		admin = srv.AdminURL()
	}
	env := snapshottest.NewEnvOn(t, admin, "client-dumpdies", moodlegen.Tiny())
	// A big table keeps pg_dump in COPY long enough to be caught there.
	snapshottest.ExecSQL(t, env.DBURL, `CREATE TABLE mdl_bulk AS SELECT g AS id, md5(g::text) || repeat('y', 200) AS payload FROM generate_series(1, 400000) g`)
	f := newRelFleet(t, env)

	agg := "count(pg_terminate_backend(pid))"
	if restart {
		agg = "count(*)"
	}
	var interrupted atomic.Int64
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		for {
			select {
			case <-done:
				return
			default:
			}
			var n int64
			if err := conn.QueryRow(ctx, `SELECT `+agg+` FROM pg_stat_activity
				WHERE datname = $1 AND application_name = 'pg_dump' AND query ILIKE 'COPY%'`, env.DBName).Scan(&n); err != nil {
				t.Error(err)
				return
			}
			if n > 0 {
				interrupted.Add(n)
				if restart {
					if err := srv.Restart(ctx); err != nil {
						t.Error(err)
					}
				}
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	code, out, errOut := f.run(t, "backup", env.Name)
	close(done)
	<-watched // a restart finishes before the server is used again
	if interrupted.Load() == 0 {
		t.Fatalf("pg_dump was never caught streaming (exit %d)", code)
	}
	relNoCrash(t, "backup with pg_dump killed", out, errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	var lines []string
	for _, l := range relLines(errOut) {
		// The private server's URL carries its password: warned about.
		if !strings.HasPrefix(l, "warning: ") || !strings.Contains(l, "embeds a password") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "mbackup: "+env.Name+": ") || !strings.Contains(lines[1], "1 of 1 environment(s) failed; nothing was committed") {
		t.Errorf("want the environment's error and the summary, got:\n%s", errOut)
	}
	if !strings.Contains(lines[0], "pg_dump") ||
		!strings.Contains(lines[0], "terminating connection due to administrator command") && !strings.Contains(lines[0], "server closed the connection") {
		t.Errorf("error does not name pg_dump and its lost connection: %s", lines[0])
	}
	t.Logf("stderr: %s", lines[0])
	if sns := f.snapshots(t); len(sns) != 0 {
		t.Errorf("%d snapshots committed by a failed backup", len(sns))
	}
	f.mustRun(t, "check", "--read-data")
	want := captureRel(t, env)
	f.mustRun(t, "backup", env.Name)
	sns := f.snapshots(t)
	if len(sns) != 1 {
		t.Fatalf("%d snapshots after the second backup", len(sns))
	}
	f.verifySnapshot(t, env, sns[0].ID, want)
}

// The S3 credentials of the CLI fleets, read from these variables as in
// production (set once per test binary: parallel tests cannot t.Setenv).
const (
	relS3KeyVar    = "MBACKUP_RELTEST_S3_ACCESS"
	relS3SecretVar = "MBACKUP_RELTEST_S3_SECRET"
)

// s3Fleet is a fleet whose repository lives in a fresh bucket on the real
// S3 server behind a fault proxy. The CLI retries with its production
// policy.
func s3Fleet(t *testing.T, env *snapshottest.Env) (*relFleet, *faultproxy.Proxy) {
	t.Helper()
	srv := s3test.Start(t)
	cfg := srv.Config(t)
	// Variables of this fleet's own: without a shared server (as in CI),
	// each fleet has a server with its own secret, and fleets run at once.
	suffix := strings.ToUpper(strings.TrimPrefix(cfg.Bucket, "mbackup-test-"))
	keyVar, secretVar := relS3KeyVar+"_"+suffix, relS3SecretVar+"_"+suffix
	os.Setenv(keyVar, srv.AccessKey)
	os.Setenv(secretVar, srv.SecretKey)
	p, err := faultproxy.New(cfg.Endpoint, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	f := newRelFleet(t, env)
	f.repo = fmt.Sprintf("s3:http://%s/%s/%s", p.Addr(), cfg.Bucket, cfg.Prefix)
	f.repoS3 = fmt.Sprintf("  s3:\n    access_key_env: %s\n    secret_key_env: %s\n", keyVar, secretVar)
	f.write(t)
	// A cheap key, as for the local fleets.
	be, err := s3.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := engine.Init(context.Background(), be, relPassword, engine.InitOptions{}, snapshottest.TestOptions())
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	return f, p
}

// The CLI against S3 with transient 503s, 500s and resets: they are
// retried and backup, check and restore succeed.
func TestS3TransientFaultsCLI(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-s3flaky", moodlegen.Tiny())
	f, p := s3Fleet(t, env)
	// The first request of every command is the bucket check (a HEAD).
	p.Add(faultproxy.Rule{Kind: faultproxy.Status, Status: 503, Method: "HEAD", Times: 1})
	p.Add(faultproxy.Rule{Kind: faultproxy.Status, Status: 503, Probability: 0.15})
	p.Add(faultproxy.Rule{Kind: faultproxy.Status, Status: 500, Probability: 0.05})
	p.Add(faultproxy.Rule{Kind: faultproxy.Reset, After: 2000, Probability: 0.05})
	want := captureRel(t, env)
	var results []backupResult
	out := f.mustRun(t, "backup", env.Name, "--json")
	if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 1 || !results[0].OK {
		t.Fatalf("backup --json: %v %s", err, out)
	}
	f.mustRun(t, "check", "--read-data")
	f.verifySnapshot(t, env, *results[0].Snapshot, want)
	st := p.Stats()
	t.Logf("%d requests, transient faults injected and retried: %v", st.Requests, st.Injected)
	if st.Total() == 0 {
		t.Fatal("no fault injected: the test proves nothing")
	}
}

// Faults that outlast the CLI's retries (about half a minute) fail backup,
// restore and prune with exit 1 and a message naming the operation and the
// cause; nothing is committed and the repository checks clean. The three
// run at once, each against its own bucket, to wait out the retries once.
func TestS3PersistentFaultsCLI(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-s3down", moodlegen.Tiny())
	type outcome struct {
		code           int
		stdout, stderr string
		injected       int
		fleet          *relFleet
	}
	tests := []struct {
		name  string // also in the message
		rule  faultproxy.Rule
		args  []string
		cause string
		out   outcome
	}{
		{name: "backup", rule: faultproxy.Rule{Kind: faultproxy.Status, Status: 503, Method: "PUT", PathContains: "/data/"},
			args: []string{"backup", env.Name}, cause: "503"},
		{name: "restore", rule: faultproxy.Rule{Kind: faultproxy.Reset, Method: "GET", PathContains: "/data/", After: 1000},
			args: []string{"restore", env.Name, "--target-dir", filepath.Join(t.TempDir(), "restore"), "--yes"}, cause: "onnection"},
		{name: "prune", rule: faultproxy.Rule{Kind: faultproxy.Status, Status: 500, Method: "GET", PathContains: "prefix=repo%2Fdata"},
			args: []string{"prune"}, cause: "500"},
	}
	var wg sync.WaitGroup
	for i := range tests {
		tt := &tests[i]
		f, p := s3Fleet(t, env)
		f.mustRun(t, "backup", env.Name, "--time", relDay(1))
		p.Add(tt.rule)
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, errOut := f.run(t, tt.args...)
			tt.out = outcome{code: code, stdout: out, stderr: errOut, injected: p.Stats().Total(), fleet: f}
			p.Clear()
		}()
	}
	wg.Wait()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.out
			relNoCrash(t, tt.name, o.stdout, o.stderr)
			if o.injected == 0 {
				t.Fatalf("the fault never fired (exit %d):\n%s", o.code, o.stderr)
			}
			if o.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", o.code, o.stderr)
			}
			// Besides the command's error: the retry layer's warnings and
			// the engine's log of failed uploads, as structured log lines.
			var errLines []string
			for _, l := range relLines(o.stderr) {
				switch {
				case strings.HasPrefix(l, "mbackup: "):
					errLines = append(errLines, l)
				case strings.HasPrefix(l, "time=") && strings.Contains(l, " level="):
				default:
					t.Errorf("unexpected stderr line: %s", l)
				}
			}
			if len(errLines) == 0 || !strings.Contains(errLines[0], tt.cause) || !strings.Contains(errLines[0], tt.name) {
				t.Fatalf("the error does not name the operation and the cause %q: %q\n%s", tt.cause, errLines, o.stderr)
			}
			t.Logf("%s failed as it should: %s", tt.name, errLines[0])
			if n := len(o.fleet.snapshots(t)); n != 1 {
				t.Errorf("%d snapshots after the failed %s, want 1", n, tt.name)
			}
			o.fleet.mustRun(t, "check", "--read-data")
		})
	}
}

// init creates a missing bucket through transient faults: the bucket check
// and the creation are retried like every other request.
func TestS3InitRetriesTransientFaults(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-s3init", moodlegen.Tiny())
	f, p := s3Fleet(t, env)
	bucket := fmt.Sprintf("mbackup-init-%d", time.Now().UnixNano())
	f.repo = fmt.Sprintf("s3:http://%s/%s/repo", p.Addr(), bucket)
	f.write(t)
	p.Add(faultproxy.Rule{Kind: faultproxy.Status, Status: 503, Method: "HEAD", Times: 1})
	p.Add(faultproxy.Rule{Kind: faultproxy.Status, Status: 503, Method: "PUT", Times: 1}) // the bucket's creation
	f.mustRun(t, "init")
	if n := p.Stats().Total(); n != 2 {
		t.Fatalf("%d faults injected, want the bucket check's and the creation's", n)
	}
	f.mustRun(t, "backup", env.Name)
	if sns := f.snapshots(t); len(sns) != 1 {
		t.Fatalf("%d snapshots in the new bucket, want 1", len(sns))
	}
}

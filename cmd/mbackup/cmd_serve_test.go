package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mbackup/mbackup/restore/staging/stagingtest"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// serveFleet is a configuration with environments on the real
// PostgreSQL and a local repository created by mbackup init.
type serveFleet struct {
	dir, config, repo, state string
	envs                     []*snapshottest.Env
}

func newServeFleet(t *testing.T, envs []*snapshottest.Env, extra string) *serveFleet {
	t.Helper()
	return newFleet(t, envs, "@every 2s", extra, "")
}

// newFleet writes the configuration: envs on schedule, extra top-level
// settings, extraEnvs more environment entries.
func newFleet(t *testing.T, envs []*snapshottest.Env, schedule, extra, extraEnvs string) *serveFleet {
	t.Helper()
	f := &serveFleet{dir: t.TempDir(), envs: envs}
	f.config = filepath.Join(f.dir, "mbackup.yaml")
	f.repo = filepath.Join(f.dir, "repo")
	f.state = filepath.Join(f.dir, "state")
	pw := filepath.Join(f.dir, "repo.key")
	if err := os.WriteFile(pw, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "timezone: Europe/Zurich\nconcurrency: 2\nstate_dir: %s\n", f.state)
	fmt.Fprintf(&b, "repository:\n  url: %s\n  password_file: %s\n", f.repo, pw)
	fmt.Fprintf(&b, "defaults:\n  schedule: %q\n  retention: {last: 3}\n", schedule)
	b.WriteString(extra)
	b.WriteString("environments:\n")
	for _, e := range envs {
		fmt.Fprintf(&b, "  %s:\n    database: %s\n    moodledata: %s\n    config_php: %s\n", e.Name, e.DBURL, e.Moodledata, e.ConfigPHP)
	}
	b.WriteString(extraEnvs)
	if err := os.WriteFile(f.config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := f.mbackup(t, "init"); code != 0 {
		t.Fatalf("mbackup init: exit %d: %s", code, stderr)
	}
	return f
}

// mbackup runs a command in-process against the fleet's configuration.
func (f *serveFleet) mbackup(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"--config", f.config}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// server is a running `mbackup serve`.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	logs *lockedBuffer
	done chan struct{}
	err  error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (f *serveFleet) serve(t *testing.T, args ...string) *server {
	t.Helper()
	addr := freeAddr(t)
	s := &server{t: t, base: "http://" + addr, logs: &lockedBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(relBinary(t), append([]string{"serve", "--config", f.config, "--listen", addr, "--log-format", "json"}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	s.cmd.Env = append(os.Environ(), "MBACKUP_CONFIG=")
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", s.logs.String())
		}
	})
	s.waitFor("/healthz to answer ok", func() bool {
		code, body := s.get("/healthz")
		return code == http.StatusOK && body == "ok\n"
	})
	return s
}

func (s *server) get(path string) (int, string) {
	resp, err := http.Get(s.base + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitFor polls cond; the deadline is generous (a slow CI machine) and
// only there so that a broken service fails the test instead of hanging it.
func (s *server) waitFor(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		select {
		case <-s.done:
			s.t.Fatalf("serve exited (%v) while waiting for %s", s.err, what)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) signal(sig os.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// logged reports whether one log record's message starts with msg and
// its text contains every one of more.
func (s *server) logged(msg string, more ...string) bool {
	for _, l := range s.lines() {
		if m, _ := l["msg"].(string); !strings.HasPrefix(m, msg) {
			continue
		}
		text := fmt.Sprint(l)
		ok := true
		for _, m := range more {
			ok = ok && strings.Contains(text, m)
		}
		if ok {
			return true
		}
	}
	return false
}

// stop sends SIGTERM and returns the exit code.
func (s *server) stop() int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(2 * time.Minute):
		s.t.Fatal("serve did not exit after SIGTERM")
	}
	return s.cmd.ProcessState.ExitCode()
}

// logLine is one JSON log record.
type logLine map[string]any

func (s *server) lines() []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// jobEnds returns the "job end" records of env's backups with result.
func (s *server) jobEnds(env, result string) []logLine {
	var out []logLine
	for _, l := range s.lines() {
		if l["msg"] == "job end" && l["job"] == "backup" && l["env"] == env && l["result"] == result {
			out = append(out, l)
		}
	}
	return out
}

type statusJSON struct {
	Env         string  `json:"env"`
	LastSuccess *string `json:"last_success"`
	AgeSeconds  *int64  `json:"age_seconds"`
	Overdue     bool    `json:"overdue"`
	LastError   *string `json:"last_error"`
	Snapshots   int     `json:"snapshots"`
}

func decodeStatus(t *testing.T, data string) map[string]statusJSON {
	t.Helper()
	var arr []statusJSON
	if err := json.Unmarshal([]byte(data), &arr); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, data)
	}
	out := map[string]statusJSON{}
	for _, e := range arr {
		out[e.Env] = e
	}
	return out
}

// repoSnapshots lists the repository's snapshot IDs per environment.
func (f *serveFleet) repoSnapshots(t *testing.T) map[string][]string {
	t.Helper()
	code, out, stderr := f.mbackup(t, "--json", "snapshots")
	if code != 0 {
		t.Fatalf("mbackup snapshots: exit %d: %s", code, stderr)
	}
	var sns []struct{ ID, Env string }
	if err := json.Unmarshal([]byte(out), &sns); err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, s := range sns {
		m[s.Env] = append(m[s.Env], s.ID)
	}
	return m
}

// checkRepository runs mbackup check and looks for leftover locks.
func (f *serveFleet) checkRepository(t *testing.T) {
	t.Helper()
	if code, out, stderr := f.mbackup(t, "check"); code != 0 {
		t.Errorf("mbackup check after the service: exit %d\n%s%s", code, out, stderr)
	}
	if locks, _ := os.ReadDir(filepath.Join(f.repo, "locks")); len(locks) != 0 {
		t.Errorf("%d lock file(s) left in the repository after a clean stop", len(locks))
	}
}

// committedWereLogged checks that every snapshot in the repository is one
// the service logged as a successful backup: nothing half-done committed.
func (s *server) committedWereLogged(t *testing.T, f *serveFleet) map[string][]string {
	t.Helper()
	logged := map[string]bool{}
	for _, l := range s.lines() {
		if l["msg"] == "job end" && l["result"] == "ok" {
			if id, ok := l["snapshot"].(string); ok {
				logged[id] = true
			}
		}
	}
	sns := f.repoSnapshots(t)
	for env, ids := range sns {
		for _, id := range ids {
			if !logged[id] {
				t.Errorf("snapshot %s of %s is in the repository but no backup logged it", id[:8], env)
			}
		}
	}
	return sns
}

func TestServeBacksUpOnSchedule(t *testing.T) {
	a := snapshottest.NewEnv(t, "srv-a", moodlegen.Tiny())
	b := snapshottest.NewEnv(t, "srv-b", moodlegen.Tiny())
	f := newServeFleet(t, []*snapshottest.Env{a, b}, "")
	started := time.Now()
	s := f.serve(t)

	// Let it run for a few schedule periods (@every 2s): until each
	// environment has three successful backups.
	s.waitFor("three backups of each environment", func() bool {
		return len(s.jobEnds(a.Name, "ok")) >= 3 && len(s.jobEnds(b.Name, "ok")) >= 3
	})

	code, body := s.get("/status")
	if code != http.StatusOK {
		t.Fatalf("/status: %d %s", code, body)
	}
	httpStatus := decodeStatus(t, body)
	rc, out, stderr := f.mbackup(t, "--json", "status")
	if rc != 0 {
		t.Errorf("mbackup status: exit %d, want 0: %s", rc, stderr)
	}
	cliStatus := decodeStatus(t, out)
	for _, st := range []map[string]statusJSON{httpStatus, cliStatus} {
		for _, e := range []*snapshottest.Env{a, b} {
			got, ok := st[e.Name]
			if !ok {
				t.Fatalf("status lacks %s: %v", e.Name, st)
			}
			if got.LastSuccess == nil || got.AgeSeconds == nil || got.Overdue || got.LastError != nil || got.Snapshots < 1 {
				t.Errorf("status of %s: %+v; want a success, not overdue, no error", e.Name, got)
				continue
			}
			if ls, err := time.Parse(time.RFC3339, *got.LastSuccess); err != nil || ls.Before(started.Truncate(time.Second)) {
				t.Errorf("last success of %s is %s (%v); want one made by this service (started %s)", e.Name, *got.LastSuccess, err, started)
			}
		}
	}

	_, metrics := s.get("/metrics")
	for _, e := range []*snapshottest.Env{a, b} {
		for _, m := range []string{
			`mbackup_backup_last_success_timestamp_seconds{env="` + e.Name + `"} `,
			`mbackup_backup_last_duration_seconds{env="` + e.Name + `"} `,
			`mbackup_backup_last_added_bytes{env="` + e.Name + `"} `,
			`mbackup_snapshots{env="` + e.Name + `"} `,
			`mbackup_backup_failures_total{env="` + e.Name + `"} 0`,
		} {
			if !strings.Contains(metrics, m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
	}
	for _, m := range []string{"mbackup_repository_size_bytes ", "process_resident_memory_bytes ", "go_goroutines "} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// SIGHUP with a broken configuration: refused, backups go on.
	orig, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.config, append(append([]byte(nil), orig...), "bogus_key: 1\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	s.signal(syscall.SIGHUP)
	s.waitFor("the reload to be refused", func() bool { return s.logged("configuration reload refused", "bogus_key") })
	okA := len(s.jobEnds(a.Name, "ok"))
	s.waitFor("a backup with the old configuration", func() bool { return len(s.jobEnds(a.Name, "ok")) > okA })
	// A valid one: b is no longer scheduled from the reload on.
	changed := strings.Replace(string(orig), "    moodledata: "+b.Moodledata+"\n", "    moodledata: "+b.Moodledata+"\n    schedule: \"off\"\n", 1)
	if changed == string(orig) {
		t.Fatal("test bug: configuration unchanged")
	}
	if err := os.WriteFile(f.config, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	s.signal(syscall.SIGHUP)
	s.waitFor("the reload", func() bool { return s.logged("configuration reloaded") })
	okA = len(s.jobEnds(a.Name, "ok"))
	s.waitFor("two more backups of a", func() bool { return len(s.jobEnds(a.Name, "ok")) >= okA+2 })
	reloaded := false
	for _, l := range s.lines() {
		if l["msg"] == "configuration reloaded" {
			reloaded = true
		}
		if reloaded && l["msg"] == "job start" && l["env"] == b.Name {
			t.Errorf("%s started after its schedule was turned off: %v", b.Name, l)
		}
	}

	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0", code)
	}
	f.checkRepository(t)
	// Every success was followed by retention (keep last 3): the
	// repository holds exactly the newest three of what was logged.
	sns := s.committedWereLogged(t, f)
	for _, e := range []*snapshottest.Env{a, b} {
		oks := s.jobEnds(e.Name, "ok")
		if want := min(len(oks), 3); len(sns[e.Name]) != want {
			t.Errorf("%s: %d snapshots after %d logged backups with keep last 3; want %d", e.Name, len(sns[e.Name]), len(oks), want)
		}
		if last := oks[len(oks)-1]["snapshot"]; len(sns[e.Name]) == 0 || sns[e.Name][len(sns[e.Name])-1] != last {
			t.Errorf("%s: newest snapshot in the repository is not the last one logged (%v)", e.Name, last)
		}
		for _, l := range oks {
			for _, k := range []string{"snapshot", "bytes", "added_bytes", "duration_seconds"} {
				if _, ok := l[k]; !ok {
					t.Errorf("job end line lacks %s: %v", k, l)
				}
			}
		}
	}
	if !strings.Contains(s.logs.String(), `"msg":"job start","job":"backup"`) {
		t.Errorf("no job start lines in the log")
	}
}

func TestServeFailingEnvironment(t *testing.T) {
	ok := snapshottest.NewEnv(t, "srv-ok", moodlegen.Tiny())
	down := snapshottest.NewEnv(t, "srv-down", moodlegen.Tiny())
	// Its database is gone: every backup of it fails.
	ctx := context.Background()
	if err := moodlegen.DropDatabase(ctx, snapshottest.AdminURL(), down.DBName); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		hooks []map[string]any
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || r.Header.Get("X-Hook-Token") != "hook-secret-123" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		hooks = append(hooks, m)
		mu.Unlock()
	}))
	defer hook.Close()
	webhooks := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), hooks...)
	}
	extra := "retry: {attempts: 2, delay: 1s}\nnotify:\n  on: [failure, recovery]\n  webhook:\n    url: " + hook.URL +
		"/hook\n    headers: {X-Hook-Token: hook-secret-123}\n"
	f := newServeFleet(t, []*snapshottest.Env{ok, down}, extra)
	s := f.serve(t, "--grace", "0s")

	// Several failed runs of down (two attempts each) while ok goes on.
	s.waitFor("three failed runs of the environment without database", func() bool {
		return len(s.jobEnds(down.Name, "failed")) >= 6
	})
	okBefore := len(s.jobEnds(ok.Name, "ok"))
	s.waitFor("more backups of the healthy environment", func() bool {
		return len(s.jobEnds(ok.Name, "ok")) >= okBefore+2
	})
	got := webhooks()
	if len(got) != 1 || got[0]["event"] != "failure" || got[0]["env"] != down.Name || got[0]["job"] != "backup" {
		t.Fatalf("webhooks after %d failed attempts: %v; want exactly one failure of %s", len(s.jobEnds(down.Name, "failed")), got, down.Name)
	}
	if e, _ := got[0]["error"].(string); !strings.Contains(e, down.DBName) {
		t.Errorf("failure notification error %q does not name the database", e)
	}

	rc, out, stderr := f.mbackup(t, "--json", "status")
	if rc != 1 {
		t.Errorf("mbackup status with a failing environment: exit %d, want 1", rc)
	}
	st := decodeStatus(t, out)
	if e := st[down.Name]; e.LastError == nil || !e.Overdue || e.LastSuccess != nil || e.AgeSeconds != nil {
		t.Errorf("status of %s: %+v; want its error, overdue, never succeeded", down.Name, e)
	}
	if e := st[ok.Name]; e.LastError != nil || e.Overdue || e.LastSuccess == nil {
		t.Errorf("status of %s: %+v", ok.Name, e)
	}
	if !strings.Contains(stderr, down.Name+" (failed, overdue)") {
		t.Errorf("status stderr does not name the failing environment: %q", stderr)
	}
	rc, table, _ := f.mbackup(t, "status")
	if rc != 1 || !strings.Contains(table, "FAILED") || !strings.Contains(table, "does not exist") {
		t.Errorf("status table (exit %d):\n%s", rc, table)
	}
	_, metrics := s.get("/metrics")
	if !strings.Contains(metrics, `mbackup_backup_last_run_failed{env="`+down.Name+`"} 1`) ||
		strings.Contains(metrics, `mbackup_backup_failures_total{env="`+down.Name+`"} 0`) {
		t.Errorf("/metrics does not show %s failing", down.Name)
	}
	if strings.Contains(s.logs.String(), "hook-secret-123") {
		t.Error("the log contains the webhook header secret")
	}

	// The database is back: one recovery notification.
	if err := moodlegen.CreateDatabase(ctx, snapshottest.AdminURL(), down.DBName, moodlegen.Tiny()); err != nil {
		t.Fatal(err)
	}
	s.waitFor("two backups of the repaired environment", func() bool {
		return len(s.jobEnds(down.Name, "ok")) >= 2
	})
	got = webhooks()
	if len(got) != 2 || got[1]["event"] != "recovery" || got[1]["env"] != down.Name {
		t.Fatalf("webhooks after the repair: %v; want the failure and one recovery", got)
	}
	if rc, _, stderr := f.mbackup(t, "--json", "status"); rc != 0 {
		t.Errorf("mbackup status after the repair: exit %d: %s", rc, stderr)
	}

	// --grace 0s: SIGTERM cancels whatever runs; nothing half-done may be
	// committed.
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0", code)
	}
	f.checkRepository(t)
	sns := s.committedWereLogged(t, f)
	if len(sns[down.Name]) == 0 || len(sns[ok.Name]) == 0 {
		t.Errorf("snapshots after the run: %v", sns)
	}
}

// A staging copy with staging.schedule is refreshed by the service.
func TestServeRefreshesStaging(t *testing.T) {
	f := newStgFleet(t)
	f.mustRun(t, "backup", f.prod.Name)
	state := filepath.Join(f.dir, "state")
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(cfg), "      wwwroot: https://"+f.staging+".example.ch\n") {
		t.Fatalf("test bug: the staging block is not last:\n%s", cfg)
	}
	cfg = append(cfg, "      schedule: \"@every 2s\"\n    schedule: \"off\"\nstate_dir: "+state+"\n"...)
	if err := os.WriteFile(f.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	sf := &serveFleet{dir: f.dir, config: f.config, repo: f.repoDir, state: state}
	s := sf.serve(t)
	s.waitFor("a staging refresh", func() bool {
		for _, l := range s.lines() {
			if l["msg"] == "job end" && l["job"] == "staging" {
				return true
			}
		}
		return false
	})
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM", code)
	}
	var end logLine
	for _, l := range s.lines() {
		if l["msg"] == "job end" && l["job"] == "staging" {
			end = l
			break
		}
		if l["msg"] == "job start" && l["job"] == "backup" {
			t.Errorf("a backup ran although its schedule is off: %v", l)
		}
	}
	if end["result"] != "ok" || end["env"] != f.prod.Name {
		t.Fatalf("staging job: %v", end)
	}
	if _, err := os.Stat(filepath.Join(f.sim.EnvDir(f.staging), "moodledata")); err != nil {
		t.Errorf("staging environment was not created: %v", err)
	}
	rec, err := os.ReadFile(filepath.Join(state, f.prod.Name+".staging.json"))
	if err != nil || !strings.Contains(string(rec), `"result": "ok"`) {
		t.Errorf("staging run record: %s, %v", rec, err)
	}
	if strings.Contains(s.logs.String(), stagingtest.Token) {
		t.Error("the service log contains the Jelastic token")
	}
}

package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/cmd/internal/notify"
	"github.com/mbackup/mbackup/cmd/internal/state"
	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/tree"
	"github.com/mbackup/mbackup/snapshot"
)

// fixture is a service over an in-memory repository with fake backups
// and a fake clock, notifying a test webhook.
type fixture struct {
	t     *testing.T
	dir   string
	clk   *fakeClock
	repo  *engine.Repository
	store *state.Store
	svc   *Service
	drv   *loopDriver
	logs  *syncBuffer

	mu      sync.Mutex
	broken  map[string]bool        // environments whose backup fails
	block   map[string]bool        // environments whose backup waits for ctx
	calls   map[string][]time.Time // backup starts per environment
	forgets map[string]int
	hooks   []map[string]any // webhook bodies

	cancel context.CancelFunc
	done   chan struct{}
	seq    int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const fixtureConfig = `
timezone: Europe/Zurich
concurrency: 2
state_dir: STATE
repository: {url: REPO, password_env: PW}
retry: {attempts: 2, delay: 5m}
notify:
  on: [failure, recovery]
  webhook:
    url: HOOK/hook
    headers: {Authorization: Bearer hook-token}
defaults:
  schedule: "0 2 * * *"
  retention: {last: 3}
environments:
  good:
    database: postgres://postgres@127.0.0.1/good
    moodledata: /nonexistent/good
  bad:
    database: postgres://postgres@127.0.0.1/bad
    moodledata: /nonexistent/bad
EXTRA`

func newFixture(t *testing.T, start time.Time, extra string) *fixture {
	t.Helper()
	f := &fixture{
		t: t, dir: t.TempDir(), clk: newFakeClock(start), logs: &syncBuffer{},
		broken: map[string]bool{}, block: map[string]bool{}, calls: map[string][]time.Time{}, forgets: map[string]int{},
	}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || r.Header.Get("Authorization") != "Bearer hook-token" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.hooks = append(f.hooks, m)
		f.mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	repo, err := engine.Init(context.Background(), mem.New(), "test password", engine.InitOptions{},
		engine.Options{KDF: crypto.KDFParams{N: 1 << 10, R: 8, P: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	f.repo = repo
	cfg := f.config(hook.URL, extra)
	f.store, err = state.Open(cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc, err = New(Options{
		Config: cfg, Inventory: NewRepoInventory(repo), Store: f.store, Notifier: n, Clock: f.clk, Grace: 10 * time.Minute,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)), Version: "test",
		Jobs: Jobs{Backup: f.backup, Forget: func(ctx context.Context, env *config.Environment) (int, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.forgets[env.Name]++
			return 0, nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.drv = drive(f.svc.sched)
	return f
}

func (f *fixture) config(hookURL, extra string) *config.Config {
	f.t.Helper()
	r := strings.NewReplacer("STATE", filepath.Join(f.dir, "state"), "REPO", filepath.Join(f.dir, "repo"), "HOOK", hookURL, "EXTRA", extra)
	p := filepath.Join(f.dir, "mbackup.yaml")
	if err := os.WriteFile(p, []byte(r.Replace(fixtureConfig)), 0o600); err != nil {
		f.t.Fatal(err)
	}
	cfg, err := config.Load(p, config.SkipPathChecks())
	if err != nil {
		f.t.Fatal(err)
	}
	return cfg
}

// commit stores an (empty) snapshot of env taken at tm.
func (f *fixture) commit(env string, tm time.Time) *snapshot.Snapshot {
	ctx := context.Background()
	sess, err := f.repo.StartSession(ctx, "backup", env)
	if err != nil {
		f.t.Error(err)
		return nil
	}
	defer sess.Close(ctx)
	saved, err := f.repo.SaveTree(ctx, &tree.Tree{})
	if err != nil {
		f.t.Error(err)
		return nil
	}
	m := snapshot.Manifest{Env: env, Started: tm, Finished: tm, AddedBytes: 123, Files: &snapshot.FileStats{Bytes: 4567}}
	meta, _ := json.Marshal(m)
	sn := &engine.Snapshot{Time: tm, Source: env, Tree: saved.ID, Meta: meta}
	if _, err := sess.Commit(ctx, sn); err != nil {
		f.t.Error(err)
		return nil
	}
	return &snapshot.Snapshot{Snapshot: sn, Manifest: m}
}

func (f *fixture) backup(ctx context.Context, env *config.Environment) (BackupResult, error) {
	now := f.clk.Now()
	f.mu.Lock()
	f.calls[env.Name] = append(f.calls[env.Name], now)
	broken, block := f.broken[env.Name], f.block[env.Name]
	f.mu.Unlock()
	if block {
		f.drv.setBlocked(1)
		defer f.drv.setBlocked(-1)
		<-ctx.Done()
		return BackupResult{}, fmt.Errorf("backup %s: %w", env.Name, ctx.Err())
	}
	if broken {
		return BackupResult{}, errors.New("backup " + env.Name + ": database: connect: connection refused")
	}
	sn := f.commit(env.Name, now)
	return BackupResult{Snapshot: sn.ID().String(), Time: now, Bytes: 4567, AddedBytes: 123}, nil
}

// restart replaces the service by a new one on the same repository,
// state folder and notifier, with the clock at now.
func (f *fixture) restart(now time.Time) {
	f.t.Helper()
	f.clk = newFakeClock(now)
	old := f.svc
	svc, err := New(Options{Config: old.config(), Inventory: NewRepoInventory(f.repo), Store: f.store, Notifier: old.notifier,
		Clock: f.clk, Logger: old.log, Jobs: old.jobs, Grace: time.Minute})
	if err != nil {
		f.t.Fatal(err)
	}
	f.svc, f.drv, f.seq = svc, drive(svc.sched), 0
}

func (f *fixture) start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() { f.svc.Run(ctx); close(f.done) }()
}

func (f *fixture) stop() {
	f.cancel()
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		f.t.Fatal("service did not stop")
	}
}

// runUntil lets fake time pass, job by job, until t.
func (f *fixture) runUntil(t time.Time) {
	for {
		seq, next := f.drv.settled(f.t, f.seq)
		if next.After(t) {
			// No timer fires: the loop stays idle, in this same state.
			f.clk.AdvanceTo(t)
			f.seq = seq - 1
			return
		}
		f.clk.AdvanceTo(next)
		f.seq = seq
	}
}

func (f *fixture) webhooks() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.hooks...)
}

func (f *fixture) get(path string) (int, string) {
	f.t.Helper()
	rec := httptest.NewRecorder()
	f.svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func (f *fixture) status() map[string]map[string]any {
	f.t.Helper()
	code, body := f.get("/status")
	if code != http.StatusOK {
		f.t.Fatalf("/status: %d %s", code, body)
	}
	var arr []map[string]any
	if err := json.Unmarshal([]byte(body), &arr); err != nil {
		f.t.Fatalf("/status: %v: %s", err, body)
	}
	out := map[string]map[string]any{}
	for _, m := range arr {
		out[m["env"].(string)] = m
	}
	return out
}

func TestServiceFailureAndRecovery(t *testing.T) {
	start := at(t, "2026-11-27 01:00:00")
	f := newFixture(t, start, "")
	// good was backed up last night, bad never.
	f.commit("good", at(t, "2026-11-26 02:10:00"))
	f.broken["bad"] = true
	if code, _ := f.get("/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz before start: %d, want 503", code)
	}
	f.start()
	defer f.stop()

	// Three nights with bad failing: one notification only.
	f.runUntil(at(t, "2026-11-30 01:00:00"))
	if code, body := f.get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	f.mu.Lock()
	goodCalls, badCalls := len(f.calls["good"]), len(f.calls["bad"])
	f.mu.Unlock()
	// bad: catch-up at start-up (never succeeded) and 3 nights, 2 attempts each.
	if goodCalls != 3 || badCalls != 8 {
		t.Errorf("backups: good %d, bad %d; want 3 and 8", goodCalls, badCalls)
	}
	hooks := f.webhooks()
	if len(hooks) != 1 || hooks[0]["event"] != "failure" || hooks[0]["env"] != "bad" ||
		!strings.Contains(fmt.Sprint(hooks[0]["error"]), "connection refused") || hooks[0]["consecutive_failures"] != 2.0 {
		t.Fatalf("webhooks after 4 failed runs: %v; want one failure for bad after its 2 attempts", hooks)
	}
	rec, err := state.Reader(f.store.Dir()).Load("bad")
	if err != nil || rec.Result != state.Failed || rec.ConsecutiveFailures != 8 || !rec.Alerting || rec.Error == "" {
		t.Errorf("bad's record: %+v, %v", rec, err)
	}
	st := f.status()
	if st["bad"]["last_error"] == nil || st["bad"]["overdue"] != true || st["bad"]["last_success"] != nil {
		t.Errorf("status of bad: %v", st["bad"])
	}
	if st["good"]["last_error"] != nil || st["good"]["overdue"] != false || st["good"]["snapshots"] != 4.0 {
		t.Errorf("status of good: %v", st["good"])
	}

	// Spread: the two environments share a schedule, so they start at
	// different, stable offsets within 30 minutes of 02:00.
	f.mu.Lock()
	gt, bt := f.calls["good"][1], f.calls["bad"][4] // bad: catch-up and retry first
	for i := 2; i < len(f.calls["good"]); i++ {
		if d := f.calls["good"][i].Sub(f.calls["good"][i-1]); d != 24*time.Hour {
			t.Errorf("good's nights are %v apart, want 24h", d)
		}
	}
	f.mu.Unlock()
	night := at(t, "2026-11-28 02:00:00")
	if gt.Equal(bt) || gt.Before(night) || bt.Before(night) || gt.Sub(night) >= 30*time.Minute || bt.Sub(night) >= 30*time.Minute {
		t.Errorf("starts %v and %v; want distinct times within 30 min after 02:00", gt, bt)
	}
	if want := night.Add(Offset("good", DefaultSpread, 24*time.Hour)); !gt.Equal(want) {
		t.Errorf("good started at %v, want %v (its offset)", gt, want)
	}

	_, metrics := f.get("/metrics")
	for _, line := range []string{
		`mbackup_backup_failures_total{env="bad"} 8`,
		`mbackup_backup_failures_total{env="good"} 0`,
		`mbackup_snapshots{env="good"} 4`,
		`mbackup_snapshots{env="bad"} 0`,
		`mbackup_backup_last_added_bytes{env="good"} 123`,
		`mbackup_backup_last_run_failed{env="bad"} 1`,
		`mbackup_backup_overdue{env="bad"} 1`,
		`mbackup_backup_last_success_timestamp_seconds{env="good"} ` + fmt.Sprintf("%.9e", float64(f.calls["good"][2].Unix())),
		`mbackup_build_info{`,
		`process_start_time_seconds`,
		`go_goroutines`,
		`mbackup_repository_size_bytes `,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	// Fixed: the next night recovers, with one recovery notification.
	f.mu.Lock()
	f.broken["bad"] = false
	f.mu.Unlock()
	f.runUntil(at(t, "2026-12-02 01:00:00"))
	hooks = f.webhooks()
	if len(hooks) != 2 || hooks[1]["event"] != "recovery" || hooks[1]["env"] != "bad" || hooks[1]["consecutive_failures"] != 8.0 {
		t.Fatalf("webhooks after the fix: %v; want the failure and one recovery", hooks)
	}
	rec, _ = state.Reader(f.store.Dir()).Load("bad")
	if rec.Result != state.OK || rec.ConsecutiveFailures != 0 || rec.Alerting || rec.LastSnapshot == "" {
		t.Errorf("bad's record after recovery: %+v", rec)
	}
	if st := f.status(); st["bad"]["last_error"] != nil || st["bad"]["overdue"] != false || st["bad"]["snapshots"] != 2.0 {
		t.Errorf("status of bad after recovery: %v", st["bad"])
	}
	f.mu.Lock()
	if f.forgets["bad"] != 2 || f.forgets["good"] != 5 {
		t.Errorf("retention applied %v times; want after every success (bad 2, good 5)", f.forgets)
	}
	f.mu.Unlock()
	for _, want := range []string{`msg="job start" job=backup env=good attempt=1 of=2`, `msg="job end" job=backup env=good result=ok snapshot=`,
		`added_bytes=123`, `msg="job end" job=backup env=bad result=failed`, `msg="notification sent" event=recovery`} {
		if !strings.Contains(f.logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(f.logs.String(), "hook-token") {
		t.Error("log contains the webhook token")
	}
}

func TestServiceRestartKeepsAlertState(t *testing.T) {
	f := newFixture(t, at(t, "2026-11-27 01:00:00"), "")
	f.broken["bad"] = true
	f.start()
	f.runUntil(at(t, "2026-11-27 03:00:00"))
	f.stop()
	if n := len(f.webhooks()); n != 1 {
		t.Fatalf("%d notifications, want 1", n)
	}
	// A new process on the same state folder, a day later: bad still
	// fails, but the operators were told already.
	f.restart(at(t, "2026-11-28 01:00:00"))
	f.start()
	defer f.stop()
	f.runUntil(at(t, "2026-11-29 01:00:00"))
	if n := len(f.webhooks()); n != 1 {
		t.Errorf("%d notifications after a restart; want still 1", n)
	}
	// 2 attempts at start-up (catch-up), 2 that night, 2 at the restart
	// (still never succeeded: catch-up again), 2 the next night.
	rec, _ := f.store.Load("bad")
	if rec.ConsecutiveFailures != 8 || !rec.Alerting {
		t.Errorf("bad's record after restart: %+v", rec)
	}
}

func TestServiceShutdownInterrupts(t *testing.T) {
	start := at(t, "2026-11-27 01:59:00")
	f := newFixture(t, start, "")
	f.commit("good", at(t, "2026-11-26 02:20:00"))
	f.commit("bad", at(t, "2026-11-26 02:20:00"))
	f.block["good"] = true
	f.start()
	f.runUntil(at(t, "2026-11-27 02:31:00")) // good is blocked in its backup
	f.mu.Lock()
	n := len(f.calls["good"])
	f.mu.Unlock()
	if n != 1 {
		t.Fatalf("good's backup started %d times, want 1", n)
	}
	f.cancel()
	f.clk.waitAsked(t, f.clk.Now().Add(10*time.Minute))
	if code, _ := f.get("/healthz"); code != http.StatusOK {
		t.Logf("/healthz while draining: %d", code)
	}
	f.clk.Advance(10 * time.Minute)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("service did not stop after the grace period")
	}
	if code, _ := f.get("/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz after stop: %d, want 503", code)
	}
	rec, _ := f.store.Load("good")
	if rec.Result != state.Interrupted || rec.ConsecutiveFailures != 0 || rec.Alerting {
		t.Errorf("interrupted record: %+v; want interrupted, not a failure", rec)
	}
	if hooks := f.webhooks(); len(hooks) != 0 {
		t.Errorf("a shutdown sent notifications: %v", hooks)
	}
	st := f.svc.Status()
	for _, e := range st {
		if e.Env == "good" && e.Failed {
			t.Errorf("an interrupted backup shows as failed: %+v", e)
		}
	}
}

func TestServiceMaintenanceWiring(t *testing.T) {
	start := at(t, "2026-11-27 01:00:00")
	extra := "maintenance: {prune: \"0 4 * * 0\", check: \"0 5 * * *\", check_subset: 2.5%}\n"
	f := newFixture(t, start, extra)
	f.commit("good", at(t, "2026-11-27 00:30:00"))
	f.commit("bad", at(t, "2026-11-27 00:30:00"))
	// Without Prune the job is left out, with a warning.
	var subsets []float64
	var mu sync.Mutex
	f.svc.jobs.Check = func(ctx context.Context, subset float64) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		subsets = append(subsets, subset)
		if len(subsets) == 2 {
			return "", errors.New("check found damage: 1 damaged snapshot(s)")
		}
		return "no errors found", nil
	}
	f.start()
	f.runUntil(at(t, "2026-11-29 06:00:00"))
	var names []string
	for _, j := range f.svc.Jobs() {
		names = append(names, j.Name)
	}
	if fmt.Sprint(names) != "[backup bad backup good check]" {
		t.Errorf("jobs %v; want backups and check (no prune function)", names)
	}
	if !strings.Contains(f.logs.String(), "maintenance.prune is set but this build cannot prune") {
		t.Errorf("no warning about the unscheduled prune:\n%s", f.logs.String())
	}
	mu.Lock()
	if fmt.Sprint(subsets) != "[2.5 2.5 2.5]" {
		t.Errorf("check ran with subsets %v; want 2.5%% on three mornings", subsets)
	}
	mu.Unlock()
	hooks := f.webhooks()
	if len(hooks) != 2 || hooks[0]["job"] != "check" || hooks[0]["event"] != "failure" || hooks[1]["event"] != "recovery" {
		t.Errorf("check notifications: %v; want its failure and recovery", hooks)
	}
	if rec, _ := f.store.Load("_check"); rec.Result != state.OK || rec.LastSuccess.IsZero() {
		t.Errorf("_check record: %+v", rec)
	}
	f.stop()

	// Reload with a prune function and an environment less.
	f.svc.jobs.Prune = func(ctx context.Context) (string, error) { return "freed 0 B", nil }
	cfg := f.config("http://127.0.0.1:1", extra+"  ") // same content
	f.start()
	defer f.stop()
	f.svc.Reload(cfg, nil)
	names = nil
	for _, j := range f.svc.Jobs() {
		names = append(names, j.Name)
	}
	if fmt.Sprint(names) != "[backup bad backup good check prune]" {
		t.Errorf("jobs after reload %v", names)
	}
}

func TestServiceSeesManualSnapshots(t *testing.T) {
	f := newFixture(t, at(t, "2026-11-27 03:00:00"), "")
	// Both ran tonight, after their spread start times (within 02:00-02:30).
	f.commit("good", at(t, "2026-11-27 02:40:00"))
	f.commit("bad", at(t, "2026-11-27 02:40:00"))
	f.start()
	defer f.stop()
	f.runUntil(at(t, "2026-11-27 03:00:30"))
	if n := f.status()["good"]["snapshots"]; n != 1.0 {
		t.Fatalf("snapshots of good: %v, want 1", n)
	}
	// mbackup backup by hand, outside the service.
	f.commit("good", at(t, "2026-11-27 03:10:00"))
	f.runUntil(at(t, "2026-11-27 03:10:30"))
	st := f.status()["good"]
	if st["snapshots"] != 2.0 || st["last_success"] != "2026-11-27T03:10:00+01:00" {
		t.Errorf("status of good after a manual backup: %v", st)
	}
	_, metrics := f.get("/metrics")
	if !strings.Contains(metrics, `mbackup_snapshots{env="good"} 2`) {
		t.Errorf("/metrics does not count the manual snapshot")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 0 {
		t.Errorf("backups ran although both environments were backed up tonight: %v", f.calls)
	}
}

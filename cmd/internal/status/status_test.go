package status

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/cmd/internal/state"
	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/tree"
	"github.com/mbackup/mbackup/snapshot"
)

const testConfig = `
timezone: Europe/Zurich
repository: {url: REPO, password_env: PW}
defaults:
  schedule: "0 2 * * *"
environments:
  daily:
    database: postgres://postgres@127.0.0.1/daily
    moodledata: /nonexistent/daily
  weekdays:
    database: postgres://postgres@127.0.0.1/weekdays
    moodledata: /nonexistent/weekdays
    schedule: "0 2 * * 1-5"
  never:
    database: postgres://postgres@127.0.0.1/never
    moodledata: /nonexistent/never
  manual:
    database: postgres://postgres@127.0.0.1/manual
    moodledata: /nonexistent/manual
    schedule: "off"
  9-lives:
    database: postgres://postgres@127.0.0.1/lives
    moodledata: /nonexistent/lives
    schedule: "@every 1h"
`

func loadConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "mbackup.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(testConfig, "REPO", filepath.Join(dir, "repo"))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p, config.SkipPathChecks())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// testRepo is an in-memory repository to commit snapshots into.
type testRepo struct {
	t    *testing.T
	repo *engine.Repository
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	r, err := engine.Init(context.Background(), mem.New(), "test password", engine.InitOptions{},
		engine.Options{KDF: crypto.KDFParams{N: 1 << 10, R: 8, P: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &testRepo{t: t, repo: r}
}

// commit saves a snapshot of env taken at at, finished a minute later.
func (r *testRepo) commit(env string, at time.Time, added int64) *snapshot.Snapshot {
	r.t.Helper()
	ctx := context.Background()
	sess, err := r.repo.StartSession(ctx, "backup", env)
	if err != nil {
		r.t.Fatal(err)
	}
	defer sess.Close(ctx)
	saved, err := r.repo.SaveTree(ctx, &tree.Tree{})
	if err != nil {
		r.t.Fatal(err)
	}
	m := snapshot.Manifest{Env: env, Started: at, Finished: at.Add(time.Minute), AddedBytes: added,
		Database: &snapshot.DBStats{DumpBytes: 1000}, Files: &snapshot.FileStats{Bytes: 2000}}
	meta, _ := json.Marshal(m)
	sn := &engine.Snapshot{Time: at, Source: env, Tree: saved.ID, Meta: meta}
	if _, err := sess.Commit(ctx, sn); err != nil {
		r.t.Fatal(err)
	}
	return &snapshot.Snapshot{Snapshot: sn, Manifest: m}
}

func TestCompute(t *testing.T) {
	cfg := loadConfig(t)
	zurich := cfg.Location
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, zurich)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	r := newTestRepo(t)
	// 2026-11-27 is a Friday.
	daily := []*snapshot.Snapshot{
		r.commit("daily", at("2026-11-26 02:00"), 500),
		r.commit("daily", at("2026-11-27 02:00"), 100),
	}
	weekdays := r.commit("weekdays", at("2026-11-27 02:00"), 7)
	manual := r.commit("manual", at("2026-11-20 12:00"), 1)
	all := append(daily, weekdays, manual)

	failedDaily := state.Record{Job: state.JobBackup, Env: "daily", Result: state.Failed,
		LastStart: at("2026-11-28 02:00"), LastEnd: at("2026-11-28 02:01"), Error: "database: connection refused",
		ConsecutiveFailures: 3}

	type want struct {
		overdue, failed bool
		lastSuccess     string // "" for null
		age             int64  // -1 for null
		lastError       string
		snapshots       int
		dueBy           string
	}
	for _, tc := range []struct {
		name    string
		env     string
		now     string
		records map[string]state.Record
		want    want
	}{
		{"daily within period", "daily", "2026-11-28 03:00", nil,
			want{lastSuccess: "2026-11-27T02:00:00+01:00", age: 25 * 3600, snapshots: 2, dueBy: "2026-11-28T04:00:00+01:00"}},
		{"daily past margin", "daily", "2026-11-28 04:01", nil,
			want{overdue: true, lastSuccess: "2026-11-27T02:00:00+01:00", age: 26*3600 + 60, snapshots: 2, dueBy: "2026-11-28T04:00:00+01:00"}},
		{"daily failed last night", "daily", "2026-11-28 03:00", map[string]state.Record{"daily": failedDaily},
			want{failed: true, lastError: "database: connection refused", lastSuccess: "2026-11-27T02:00:00+01:00", age: 25 * 3600, snapshots: 2, dueBy: "2026-11-28T04:00:00+01:00"}},
		{"weekend gap is not overdue", "weekdays", "2026-11-30 01:00", nil,
			want{lastSuccess: "2026-11-27T02:00:00+01:00", age: 71 * 3600, snapshots: 1, dueBy: "2026-11-30T04:00:00+01:00"}},
		{"weekday missed", "weekdays", "2026-11-30 05:00", nil,
			want{overdue: true, lastSuccess: "2026-11-27T02:00:00+01:00", age: 75 * 3600, snapshots: 1, dueBy: "2026-11-30T04:00:00+01:00"}},
		{"scheduled, never backed up", "never", "2026-11-28 03:00", nil,
			want{overdue: true, age: -1}},
		{"unscheduled is never overdue", "manual", "2026-12-28 03:00", nil,
			want{lastSuccess: "2026-11-20T12:00:00+01:00", age: int64(at("2026-12-28 03:00").Sub(at("2026-11-20 12:00")) / time.Second), snapshots: 1}},
		{"retry under way after a failed attempt", "daily", "2026-11-28 03:00",
			map[string]state.Record{"daily": {Result: state.Running, LastStart: at("2026-11-28 02:10"), LastEnd: at("2026-11-28 02:01"),
				Error: "database: connection refused", ConsecutiveFailures: 1}},
			want{failed: true, lastError: "database: connection refused", lastSuccess: "2026-11-27T02:00:00+01:00", age: 25 * 3600, snapshots: 2, dueBy: "2026-11-28T04:00:00+01:00"}},
		{"record remembers a forgotten success", "9-lives", "2026-11-28 03:30",
			map[string]state.Record{"9-lives": {Result: state.OK, LastSuccess: at("2026-11-28 03:00")}},
			want{lastSuccess: "2026-11-28T03:00:00+01:00", age: 1800, dueBy: "2026-11-28T06:00:00+01:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := Compute(Input{Config: cfg, Snapshots: all, Records: tc.records, Now: at(tc.now)})
			if len(out) != 5 {
				t.Fatalf("%d environments, want 5", len(out))
			}
			var got *Env
			for i := range out {
				if out[i].Env == tc.env {
					got = &out[i]
				}
			}
			if got == nil {
				t.Fatalf("no status for %s", tc.env)
			}
			w := tc.want
			if got.Overdue != w.overdue || got.Failed != w.failed || got.Snapshots != w.snapshots {
				t.Errorf("overdue %v failed %v snapshots %d; want %v %v %d", got.Overdue, got.Failed, got.Snapshots, w.overdue, w.failed, w.snapshots)
			}
			if s := deref(got.LastSuccess); s != w.lastSuccess {
				t.Errorf("last_success %q, want %q", s, w.lastSuccess)
			}
			if (got.AgeSeconds == nil) != (w.age < 0) || (got.AgeSeconds != nil && *got.AgeSeconds != w.age) {
				t.Errorf("age_seconds %v, want %d", fmtPtr(got.AgeSeconds), w.age)
			}
			if s := deref(got.LastError); s != w.lastError {
				t.Errorf("last_error %q, want %q", s, w.lastError)
			}
			if s := deref(got.DueBy); s != w.dueBy {
				t.Errorf("due_by %q, want %q", s, w.dueBy)
			}
			if got.Problem() != (w.overdue || w.failed) {
				t.Errorf("Problem() = %v", got.Problem())
			}
		})
	}
}

func TestFailureCuredByLaterSnapshot(t *testing.T) {
	cfg := loadConfig(t)
	r := newTestRepo(t)
	end := time.Date(2026, 11, 28, 2, 1, 0, 0, time.UTC)
	rec := map[string]state.Record{"daily": {Result: state.Failed, Error: "boom", LastStart: end.Add(-time.Minute), LastEnd: end}}
	// A manual backup after the failed run.
	sn := r.commit("daily", end.Add(time.Hour), 10)
	out := Compute(Input{Config: cfg, Snapshots: []*snapshot.Snapshot{sn}, Records: rec, Now: end.Add(2 * time.Hour)})
	for _, e := range out {
		if e.Env == "daily" {
			if e.Failed || e.LastError != nil {
				t.Errorf("a later snapshot must clear the failure: %+v", e)
			}
			if e.LastResult == nil || *e.LastResult != "failed" {
				t.Errorf("last_result = %v, want failed (the service's last run)", fmtPtr(e.LastResult))
			}
		}
	}
}

func TestJSONShape(t *testing.T) {
	cfg := loadConfig(t)
	out := Compute(Input{Config: cfg, Now: time.Now()})
	data, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var arr []map[string]any
	if err := json.Unmarshal(data, &arr); err != nil {
		t.Fatal(err)
	}
	for _, m := range arr {
		for _, k := range []string{"env", "last_success", "age_seconds", "overdue", "last_error", "snapshots"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%v: missing contract key %q", m["env"], k)
			}
		}
		if m["last_success"] != nil || m["age_seconds"] != nil || m["last_error"] != nil {
			t.Errorf("%v: never backed up must give nulls: %v", m["env"], m)
		}
	}
}

func TestMunin(t *testing.T) {
	cfg := loadConfig(t)
	r := newTestRepo(t)
	now := time.Date(2026, 11, 28, 3, 30, 0, 0, time.UTC)
	sns := []*snapshot.Snapshot{r.commit("daily", now.Add(-90*time.Minute), 5)}
	envs := Compute(Input{Config: cfg, Snapshots: sns, Now: now})

	var b bytes.Buffer
	if err := WriteMuninValues(&b, envs); err != nil {
		t.Fatal(err)
	}
	want := "multigraph mbackup_age\n" +
		"_9_lives.value U\ndaily.value 1.50\nmanual.value U\nnever.value U\nweekdays.value U\n" +
		"multigraph mbackup_size\n" +
		"_9_lives.value U\ndaily.value 3000\nmanual.value U\nnever.value U\nweekdays.value U\n"
	if b.String() != want {
		t.Errorf("values:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := WriteMuninConfig(&b, envs, 0); err != nil {
		t.Fatal(err)
	}
	conf := b.String()
	for _, line := range []string{
		"multigraph mbackup_age", "graph_category backup",
		"daily.label daily", "daily.warning 26.00", "daily.critical 50.00",
		"_9_lives.label 9-lives", "_9_lives.warning 3.00", "_9_lives.critical 4.00",
		"multigraph mbackup_size", "weekdays.label weekdays",
	} {
		if !strings.Contains(conf, line+"\n") {
			t.Errorf("config lacks %q:\n%s", line, conf)
		}
	}
	if strings.Contains(conf, "manual.warning") {
		t.Errorf("an unscheduled environment must have no warning level:\n%s", conf)
	}
}

func TestMuninFields(t *testing.T) {
	got := MuninFields([]string{"client-x", "client_x", "1st", "", "a.b"})
	want := map[string]string{"client-x": "client_x", "client_x": "client_x_2", "1st": "_1st", "": "_", "a.b": "a_b"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("MuninFields[%q] = %q, want %q", k, got[k], v)
		}
	}
}

func TestPeriod(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/Zurich")
	for _, tc := range []struct {
		spec string
		want time.Duration
	}{
		{"0 2 * * *", 24 * time.Hour},
		{"@every 2s", 2 * time.Second},
		{"@hourly", time.Hour},
		{"0 4 * * 0", 7 * 24 * time.Hour},
	} {
		s, err := config.ParseSchedule(tc.spec, loc)
		if err != nil {
			t.Fatal(err)
		}
		if got := Period(s, time.Date(2026, 6, 10, 12, 0, 0, 0, loc)); got != tc.want {
			t.Errorf("Period(%q) = %v, want %v", tc.spec, got, tc.want)
		}
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func fmtPtr[T any](p *T) any {
	if p == nil {
		return "null"
	}
	return *p
}

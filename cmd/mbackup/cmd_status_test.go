package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mbackup/mbackup/cmd/internal/state"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// statusFleet has a real environment on a daily schedule and one that was
// never backed up.
func statusFleet(t *testing.T) (*serveFleet, *snapshottest.Env) {
	t.Helper()
	a := snapshottest.NewEnv(t, "st-a", moodlegen.Tiny())
	never := filepath.Join(t.TempDir(), "moodledata")
	if err := os.MkdirAll(never, 0o755); err != nil {
		t.Fatal(err)
	}
	extraEnvs := fmt.Sprintf("  9-never:\n    database: postgres://postgres@127.0.0.1:5432/never_backed_up\n    moodledata: %s\n", never)
	return newFleet(t, []*snapshottest.Env{a}, "0 2 * * *", "", extraEnvs), a
}

func TestStatusCommand(t *testing.T) {
	f, a := statusFleet(t)
	if code, _, stderr := f.mbackup(t, "backup", a.Name); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	// Without the service ever running (no state folder).
	if _, err := os.Stat(f.state); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state folder exists before any service ran: %v", err)
	}
	code, out, stderr := f.mbackup(t, "--json", "status")
	if code != 1 {
		t.Errorf("status with a never backed-up environment: exit %d, want 1", code)
	}
	st := decodeStatus(t, out)
	if e := st[a.Name]; e.LastSuccess == nil || e.Overdue || e.LastError != nil || e.Snapshots != 1 || e.AgeSeconds == nil {
		t.Errorf("status of %s: %+v", a.Name, e)
	}
	if e := st["9-never"]; e.LastSuccess != nil || e.AgeSeconds != nil || !e.Overdue || e.Snapshots != 0 {
		t.Errorf("status of 9-never: %+v", e)
	}
	if !strings.Contains(stderr, "1 of 2 environment(s) need attention: 9-never (overdue)") {
		t.Errorf("stderr: %q", stderr)
	}

	// The service's record of a failed run after that backup.
	store, err := state.Open(f.state)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := store.Update(state.JobBackup, a.Name, func(r *state.Record) {
		r.LastStart, r.LastEnd, r.Result = now.Add(-time.Second), now, state.Failed
		r.Error, r.ConsecutiveFailures = "backup st-a: database: connection refused", 3
	}); err != nil {
		t.Fatal(err)
	}
	code, table, _ := f.mbackup(t, "status")
	if code != 1 {
		t.Errorf("status: exit %d, want 1", code)
	}
	lines := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(table))
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 {
			lines[fields[0]] = sc.Text()
		}
	}
	if l := lines[a.Name]; !strings.Contains(l, "FAILED") || !strings.Contains(l, "connection refused") || strings.Contains(l, "never") {
		t.Errorf("table line of %s: %q", a.Name, l)
	}
	if l := lines["9-never"]; !strings.Contains(l, "OVERDUE") || !strings.Contains(l, "never") {
		t.Errorf("table line of 9-never: %q", l)
	}
	if _, ok := lines["ENVIRONMENT"]; !ok {
		t.Errorf("no header:\n%s", table)
	}

	// A later backup (by hand) cures the failure.
	if code, _, stderr := f.mbackup(t, "backup", a.Name); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	_, out, _ = f.mbackup(t, "--json", "status")
	if e := decodeStatus(t, out)[a.Name]; e.LastError != nil || e.Snapshots != 2 {
		t.Errorf("status of %s after a new backup: %+v", a.Name, e)
	}

	if code, _, _ := f.mbackup(t, "status", "--margin", "0s"); code != 2 {
		t.Errorf("status --margin 0s: exit %d, want 2", code)
	}
}

func TestMuninCommand(t *testing.T) {
	f, a := statusFleet(t)
	if code, _, stderr := f.mbackup(t, "backup", a.Name); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	code, conf, stderr := f.mbackup(t, "munin", "config")
	if code != 0 {
		t.Fatalf("munin config: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"multigraph mbackup_age\n", "graph_category backup\n", "st_a.label st-a\n", "st_a.warning 26.00\n",
		"st_a.critical 50.00\n", "_9_never.label 9-never\n", "multigraph mbackup_size\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("munin config lacks %q:\n%s", want, conf)
		}
	}
	code, vals, stderr := f.mbackup(t, "munin")
	if code != 0 {
		t.Fatalf("munin: exit %d: %s", code, stderr)
	}
	values := map[string][]string{} // field -> values in graph order
	for _, l := range strings.Split(strings.TrimSpace(vals), "\n") {
		if strings.HasPrefix(l, "multigraph ") {
			continue
		}
		k, v, ok := strings.Cut(l, ".value ")
		if !ok {
			t.Fatalf("bad munin line %q", l)
		}
		values[k] = append(values[k], v)
	}
	if v := values["_9_never"]; len(v) != 2 || v[0] != "U" || v[1] != "U" {
		t.Errorf("never backed up: %v, want U U", v)
	}
	v := values["st_a"]
	if len(v) != 2 {
		t.Fatalf("st_a values %v", v)
	}
	if age, err := strconv.ParseFloat(v[0], 64); err != nil || age < 0 || age > 1 {
		t.Errorf("age %q: want the hours since the backup just made", v[0])
	}
	if size, err := strconv.ParseInt(v[1], 10, 64); err != nil || size <= 0 {
		t.Errorf("size %q: want the newest snapshot's size", v[1])
	}
	if code, out, _ := f.mbackup(t, "munin", "autoconf"); code != 0 || out != "yes\n" {
		t.Errorf("munin autoconf: %d %q", code, out)
	}
	if code, _, _ := f.mbackup(t, "munin", "fetch-all"); code != 2 {
		t.Errorf("munin with a bad argument: exit %d, want 2", code)
	}
}

package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// TestBackupAllSharesFiles backs up three sites generated from the same
// seed (identical moodledata files) with --all: the files are stored once.
func TestBackupAllSharesFiles(t *testing.T) {
	var envs []*snapshottest.Env
	for _, name := range []string{"site-a", "site-b", "site-c"} {
		envs = append(envs, snapshottest.NewEnv(t, name, moodlegen.Demo()))
	}
	f := newFleet(t, envs, "off", "", "")
	code, stdout, stderr := f.mbackup(t, "backup", "--all", "--json")
	if code != 0 {
		t.Fatalf("backup --all: exit %d: %s", code, stderr)
	}
	var results []backupResult
	if err := json.Unmarshal([]byte(stdout), &results); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, stdout)
	}
	if len(results) != 3 {
		t.Fatalf("%d results, want 3", len(results))
	}
	for _, r := range results {
		if !r.OK || r.Snapshot == nil || r.Error != nil || r.DurationSeconds <= 0 {
			t.Errorf("%s: %+v", r.Env, r)
		}
	}

	// snapshots --json has the contract's fields.
	code, stdout, stderr = f.mbackup(t, "snapshots", "--json")
	if code != 0 {
		t.Fatalf("snapshots: exit %d: %s", code, stderr)
	}
	var sns []map[string]any
	if err := json.Unmarshal([]byte(stdout), &sns); err != nil {
		t.Fatal(err)
	}
	if len(sns) != 3 {
		t.Fatalf("%d snapshots, want 3", len(sns))
	}
	for _, key := range []string{"id", "short_id", "env", "time", "tags", "parent", "db_bytes", "files", "files_bytes", "added_bytes"} {
		if _, ok := sns[0][key]; !ok {
			t.Errorf("snapshots --json lacks %q", key)
		}
	}
	// Two sites run at once (concurrency 2), so either may store a shared
	// file first; together the three must store about one site's worth,
	// where three copies would take three times as much.
	var total int64
	for _, r := range results {
		total += r.AddedBytes
	}
	site := int64(sns[0]["db_bytes"].(float64) + sns[0]["files_bytes"].(float64))
	if total > site*3/2 {
		t.Errorf("the three sites added %d bytes together for sites of %d bytes each: identical files must be stored once", total, site)
	}
	if sns[0]["parent"] != nil || !strings.Contains(sns[0]["time"].(string), "+01:00") {
		t.Errorf("first snapshot: parent %v, time %v (want null and a Europe/Zurich offset)", sns[0]["parent"], sns[0]["time"])
	}

	// ls lists the snapshot's moodledata, excluded folders absent.
	code, stdout, _ = f.mbackup(t, "ls", "site-a", "latest", "--json")
	if code != 0 {
		t.Fatalf("ls: exit %d", code)
	}
	var entries []lsEntry
	json.Unmarshal([]byte(stdout), &entries)
	var names []string
	for _, e := range entries {
		names = append(names, e.Path)
	}
	if !slices.Contains(names, "filedir") || slices.Contains(names, "cache") || slices.Contains(names, "sessions") {
		t.Errorf("ls latest: %v", names)
	}

	// A restore into a folder through the CLI matches the site.
	dir := filepath.Join(t.TempDir(), "out")
	if code, _, stderr := f.mbackup(t, "restore", "site-b", "--target-dir", dir); code != 0 {
		t.Fatalf("restore --target-dir: exit %d: %s", code, stderr)
	}
	got, err := moodlegen.TreeDigest(filepath.Join(dir, "moodledata"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := moodlegen.DiffTrees(envs[1].Files(t), got); len(d) > 0 {
		t.Errorf("restored moodledata differs: %v", d[:min(len(d), 5)])
	}

	// check passes and says so in JSON.
	code, stdout, _ = f.mbackup(t, "check", "--read-data", "--json")
	var res checkOutput
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || !res.OK || res.Snapshots != 3 {
		t.Errorf("check: exit %d %v %+v", code, err, res)
	}
}

// TestBackupSelection covers --tag, unknown environments and conflicting
// choices.
func TestBackupSelection(t *testing.T) {
	env := snapshottest.NewEnv(t, "site-t", moodlegen.Tiny())
	f := newFleet(t, []*snapshottest.Env{env}, "off", "", "")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"backup"}, 2, "exactly one"},
		{[]string{"backup", "site-t", "--all"}, 2, "exactly one"},
		{[]string{"backup", "nope"}, 2, "nope"},
		{[]string{"backup", "--tag", "none"}, 2, "no environment has tag none"},
		{[]string{"backup", "site-t", "--time", "yesterday"}, 2, "RFC 3339"},
		{[]string{"restore", "site-t", "--at", "1999-01-01", "--target-dir", t.TempDir()}, 1, "no snapshot"},
		{[]string{"backup", "site-t", "--time", "2026-11-28T02:00:00+01:00"}, 0, ""},
		{[]string{"restore", "site-t", "--at", "2026-11-27", "--target-dir", t.TempDir()}, 1, "the oldest is"},
		{[]string{"restore", "site-t", "--yes", "--dry-run"}, 0, ""},
		{[]string{"restore", "site-t"}, 2, "pass --yes"},
	} {
		code, _, stderr := f.mbackup(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("mbackup %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.msg)
		}
		if lines := strings.Count(strings.TrimSpace(stderr), "\n"); code != 0 && lines > 0 {
			t.Errorf("mbackup %v: error on %d lines, want one: %q", tc.args, lines+1, stderr)
		}
	}
}

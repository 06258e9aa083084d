package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
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

// TestPostgresBinCLI runs backup and restore with postgres_bin naming a
// folder whose pg_dump and pg_restore record each call and run the real
// ones: the configured programs are the ones used. A folder without them
// is refused with one line naming the key.
func TestPostgresBinCLI(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pgbin")
	calls := filepath.Join(bin, "calls")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, prog := range []string{"pg_dump", "pg_restore"} {
		real, err := exec.LookPath(prog)
		if err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf("#!/bin/sh\necho %s >> %s\nexec %s \"$@\"\n", prog, calls, real)
		if err := os.WriteFile(filepath.Join(bin, prog), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := snapshottest.NewEnv(t, "site-a", moodlegen.Demo())
	f := newFleet(t, []*snapshottest.Env{env}, "off", "  postgres_bin: "+bin+"\n", "")
	if code, _, stderr := f.mbackup(t, "backup", "site-a"); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if code, _, stderr := f.mbackup(t, "restore", "site-a", "--target-dir", dir); code != 0 {
		t.Fatalf("restore --target-dir: exit %d: %s", code, stderr)
	}
	got, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "pg_dump\npg_restore\n" {
		t.Errorf("programs called from postgres_bin: %q, want pg_dump then pg_restore", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, "db.sql")); err != nil || fi.Size() == 0 {
		t.Errorf("db.sql: %v", err)
	}

	empty := t.TempDir()
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), bin, empty, 1))
	if err := os.WriteFile(f.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := f.mbackup(t, "backup", "site-a")
	if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "defaults.postgres_bin") ||
		!strings.Contains(stderr, filepath.Join(empty, "pg_dump")+" does not exist") {
		t.Errorf("backup with an empty postgres_bin: exit %d, %q; want 2 and one line naming defaults.postgres_bin", code, stderr)
	}
}

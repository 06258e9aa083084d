package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

func TestKeys(t *testing.T) {
	env := snapshottest.NewEnv(t, "site-k", moodlegen.Tiny())
	f := newFleet(t, []*snapshottest.Env{env}, "off", "", "")
	second := filepath.Join(f.dir, "second.key")
	os.WriteFile(second, []byte("a second long password\n"), 0o600)
	if code, _, stderr := f.mbackup(t, "key", "add", "--new-password-file", second); code != 0 {
		t.Fatalf("key add: %d %s", code, stderr)
	}
	code, stdout, _ := f.mbackup(t, "key", "list", "--json")
	var keys []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	if err := json.Unmarshal([]byte(stdout), &keys); code != 0 || err != nil || len(keys) != 2 {
		t.Fatalf("key list: %d %v %s", code, err, stdout)
	}
	var first string
	for _, k := range keys {
		if k.Current {
			first = k.ID
		}
	}
	// Switch the configuration to the second password; the repository
	// opens, and the first key can go.
	cfg, _ := os.ReadFile(f.config)
	os.WriteFile(f.config, []byte(strings.Replace(string(cfg), filepath.Join(f.dir, "repo.key"), second, 1)), 0o600)
	if code, _, stderr := f.mbackup(t, "key", "remove", first[:10]); code != 0 {
		t.Fatalf("key remove: %d %s", code, stderr)
	}
	code, stdout, _ = f.mbackup(t, "key", "list", "--json")
	json.Unmarshal([]byte(stdout), &keys)
	if code != 0 || len(keys) != 1 || !keys[0].Current {
		t.Fatalf("after remove: %d %s", code, stdout)
	}
	if code, _, stderr := f.mbackup(t, "key", "remove", keys[0].ID); code == 0 || !strings.Contains(stderr, "only key") {
		t.Errorf("removing the last key: exit %d %q", code, stderr)
	}
	if code, _, stderr := f.mbackup(t, "backup", "site-k"); code != 0 {
		t.Errorf("backup with the second password: %d %s", code, stderr)
	}
}

// TestRepairIndex damages the only index file; check names it, repair
// rebuilds the index from the packs, and the snapshot restores.
func TestRepairIndex(t *testing.T) {
	env := snapshottest.NewEnv(t, "site-r", moodlegen.Tiny())
	f := newFleet(t, []*snapshottest.Env{env}, "off", "", "")
	if code, _, stderr := f.mbackup(t, "backup", "site-r"); code != 0 {
		t.Fatalf("backup: %d %s", code, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(f.repo, "index", "*"))
	if len(files) != 1 {
		t.Fatalf("%d index files, want 1", len(files))
	}
	os.WriteFile(files[0], []byte("garbage"), 0o600)
	code, _, stderr := f.mbackup(t, "check")
	if code != 1 || !strings.Contains(stderr, filepath.Base(files[0])[:8]) {
		t.Fatalf("check on a damaged index: exit %d %q", code, stderr)
	}
	if code, _, stderr := f.mbackup(t, "repair", "index"); code != 0 {
		t.Fatalf("repair index: %d %s", code, stderr)
	}
	if code, _, stderr := f.mbackup(t, "check", "--read-data"); code != 0 {
		t.Fatalf("check after repair: %d %s", code, stderr)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if code, _, stderr := f.mbackup(t, "restore", "site-r", "--target-dir", dir); code != 0 {
		t.Fatalf("restore after repair: %d %s", code, stderr)
	}
}

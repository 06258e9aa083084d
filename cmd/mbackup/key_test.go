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

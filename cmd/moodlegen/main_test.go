package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mbackup/mbackup/scripts/moodlegen"
)

func pgURL() string {
	if u := os.Getenv("MBACKUP_TEST_PG"); u != "" {
		return u
	}
	return defaultPG
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage"},
		{"unknown command", []string{"explode"}, `unknown command "explode"`},
		{"missing db", []string{"create", "--moodledata", "x"}, "--db is required"},
		{"missing moodledata", []string{"create", "--db", "x"}, "--moodledata is required"},
		{"bad preset", []string{"create", "--db", "x", "--moodledata", "y", "--preset", "huge"}, "--preset"},
		{"bad scale", []string{"create", "--db", "x", "--moodledata", "y", "--scale", "0"}, "--scale"},
		{"bad flag", []string{"create", "--nope"}, "flag provided but not defined"},
		{"stray argument", []string{"create", "--db", "x", "--moodledata", "y", "extra"}, `unexpected argument "extra"`},
		{"bad pg url", []string{"create", "--pg", "host=x", "--db", "x", "--moodledata", "y"}, "--pg"},
		{"non-empty moodledata", []string{"create", "--db", "x", "--moodledata", dir}, "not empty"},
		{"replace a foreign folder", []string{"create", "--db", "x", "--moodledata", dir, "--replace"}, "refusing to delete"},
		{"mutate without seed", []string{"mutate", "--db", "x", "--moodledata", dir}, "--seed is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "precious.txt")); err != nil {
		t.Errorf("a foreign folder was touched: %v", err)
	}
}

func TestCreateMutateDigest(t *testing.T) {
	b := make([]byte, 4)
	rand.Read(b)
	db := "mgtest_cli_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := moodlegen.DropDatabase(context.Background(), pgURL(), db); err != nil {
			t.Error(err)
		}
	})
	dir := t.TempDir()
	md := filepath.Join(dir, "moodledata")
	cfg := filepath.Join(dir, "www", "config.php")
	common := []string{"--pg", pgURL(), "--db", db, "--moodledata", md}

	code, out, errs := runCLI(t, append([]string{"create", "--preset", "tiny", "--config-php", cfg, "--json"}, common...)...)
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errs)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create --json: %v\n%s", err, out)
	}
	if created["db_rows"].(float64) < 600 || created["filedir_files"].(float64) == 0 || created["config_php"] != cfg {
		t.Errorf("create --json = %v", created)
	}
	php, err := os.ReadFile(cfg)
	if err != nil || !strings.Contains(string(php), "$CFG->dbname    = '"+db+"';") || !strings.Contains(string(php), "$CFG->dataroot  = '"+md+"';") {
		t.Errorf("config.php: %v\n%s", err, php)
	}

	digest := func() string {
		code, out, errs := runCLI(t, append([]string{"digest"}, common...)...)
		if code != 0 {
			t.Fatalf("digest: exit %d: %s", code, errs)
		}
		return out
	}
	d1 := digest()

	// Re-creating over the generated folder needs --replace and gives the same environment.
	if code, _, _ := runCLI(t, append([]string{"create", "--preset", "tiny"}, common...)...); code != 2 {
		t.Errorf("create over an existing moodledata: exit %d, want 2", code)
	}
	code, out, errs = runCLI(t, append([]string{"create", "--preset", "tiny", "--replace"}, common...)...)
	if code != 0 || !strings.HasPrefix(out, "created tiny environment") {
		t.Fatalf("create --replace: exit %d: %s%s", code, out, errs)
	}
	if d := digest(); d != d1 {
		t.Errorf("same seed, different digest:\n%s\n%s", d1, d)
	}

	code, out, errs = runCLI(t, append([]string{"mutate", "--preset", "tiny", "--seed", "3"}, common...)...)
	if code != 0 || !strings.HasPrefix(out, "mutated "+db) {
		t.Fatalf("mutate: exit %d: %s%s", code, out, errs)
	}
	if d := digest(); d == d1 {
		t.Error("digest unchanged after mutate")
	}
}

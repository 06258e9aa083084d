package jelasticsim

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCopyTreePreservesModesTimesLinks(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	dst := filepath.Join(t.TempDir(), "dst")
	old := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	mustMkdir(t, filepath.Join(src, "moodledata", "filedir", "ab"), 0o755)
	mustMkdir(t, filepath.Join(src, "private"), 0o700)
	mustWrite(t, filepath.Join(src, "moodledata", "filedir", "ab", "f1"), "one", 0o640)
	mustWrite(t, filepath.Join(src, "run.sh"), "#!/bin/sh\n", 0o755)
	mustWrite(t, filepath.Join(src, "private", "key"), "k", 0o600)
	mustWrite(t, filepath.Join(src, stateFile), "{}", 0o644)
	if err := os.Symlink("moodledata/filedir", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/target", filepath.Join(src, "dangling")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"moodledata/filedir/ab/f1", "run.sh", "moodledata/filedir/ab", "private", "."} {
		if err := os.Chtimes(filepath.Join(src, p), old, old); err != nil {
			t.Fatal(err)
		}
	}

	if err := copyTree(context.Background(), src, dst, func(rel string) bool { return rel == stateFile }); err != nil {
		t.Fatal(err)
	}

	for _, rel := range []string{".", "moodledata/filedir/ab", "moodledata/filedir/ab/f1", "run.sh", "private", "private/key"} {
		a, _ := os.Lstat(filepath.Join(src, rel))
		b, err := os.Lstat(filepath.Join(dst, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if a.Mode() != b.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, b.Mode(), a.Mode())
		}
		if !a.ModTime().Equal(b.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", rel, b.ModTime(), a.ModTime())
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "moodledata/filedir/ab/f1")); string(got) != "one" {
		t.Errorf("content %q", got)
	}
	for link, want := range map[string]string{"link": "moodledata/filedir", "dangling": "/nonexistent/target"} {
		if got, err := os.Readlink(filepath.Join(dst, link)); err != nil || got != want {
			t.Errorf("symlink %s -> %q (%v), want %q", link, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, stateFile)); !os.IsNotExist(err) {
		t.Errorf("skipped state file was copied: %v", err)
	}
	if err := copyTree(context.Background(), src, dst, nil); err == nil {
		t.Error("copy onto an existing destination must fail")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := copyTree(ctx, src, filepath.Join(t.TempDir(), "x"), nil); err == nil {
		t.Error("copy with a cancelled context must fail")
	}
}

func TestParseCommandList(t *testing.T) {
	tests := []struct {
		in   string
		want []cmdSpec
	}{
		{`[{"command":"echo","params":"hi"}]`, []cmdSpec{{"echo", "hi"}}},
		{`[{"command":"a"},{"command":"b","params":""}]`, []cmdSpec{{"a", ""}, {"b", ""}}},
		{`[{"Command":"a","PARAMS":"x"}]`, []cmdSpec{{"a", "x"}}},
		{`{"command":"single"}`, []cmdSpec{{"single", ""}}},
		{`[]`, nil},
		{`echo hi`, nil},
		{`[{"params":"x"}]`, nil},
		{`[{"command":1}]`, nil},
	}
	for _, tt := range tests {
		got, err := parseCommandList(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("parseCommandList(%s) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseCommandList(%s) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestResolvePath(t *testing.T) {
	s := &Server{cfg: Config{Root: "/r"}}
	tests := []struct {
		in, want string // want "" = refused
	}{
		{"/var/www/webroot/ROOT/config.php", "/r/e/www/config.php"},
		{"/var/www/webroot/moodledata/filedir/x", "/r/e/moodledata/filedir/x"},
		{"/var/www/webroot/ROOTX/config.php", "/r/e/var/www/webroot/ROOTX/config.php"},
		{"www/config.php", "/r/e/www/config.php"},
		{"/../../etc/passwd", "/r/e/etc/passwd"},
		{"a/../../b", "/r/e/b"},
		{"/", ""},
		{"", ""},
		{"/" + stateFile, ""},
		{"x/../" + stateFile, ""},
	}
	for _, tt := range tests {
		got, err := s.resolvePath("e", tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("resolvePath(%q) = %q, want refusal", tt.in, got)
			}
			continue
		}
		if err != nil || got != filepath.FromSlash(tt.want) {
			t.Errorf("resolvePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct {
		in, key string
		ok      bool
	}{
		{"/1.0/environment/control/rest/getenvinfo", "environment/control/getenvinfo", true},
		{"/1.0/Environment/Control/REST/GetEnvInfo/", "environment/control/getenvinfo", true},
		{"/1.0/environment/control/getenvinfo", "", false},
		{"/2.0/environment/control/rest/getenvinfo", "", false},
		{"/1.0/environment//rest/getenvinfo", "", false},
		{"/", "", false},
	}
	for _, tt := range tests {
		key, _, ok := splitPath(tt.in)
		if key != tt.key || ok != tt.ok {
			t.Errorf("splitPath(%q) = %q, %v; want %q, %v", tt.in, key, ok, tt.key, tt.ok)
		}
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"client-x": true, "A1": true, strings.Repeat("a", 64): true, strings.Repeat("a", 65): false,
		"": false, "-x": false, "a_b": false, "a.b": false, "..": false, ".hidden": false, "a/b": false,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCapBuffer(t *testing.T) {
	b := &capBuffer{max: 5}
	for _, s := range []string{"abc", "def", "ghij"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got, want := b.String(), "abcde\n[jelastic-sim: output truncated, 5 more bytes dropped]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	small := &capBuffer{max: 10}
	_, _ = small.Write([]byte("ok"))
	if small.String() != "ok" {
		t.Errorf("String() = %q", small.String())
	}
}

func TestWriteFileAtomicKeepsNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, content := range []string{"first", "second"} {
		if err := writeFileAtomic(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(got) != "second" || fi.Mode().Perm() != 0o640 {
		t.Errorf("content %q mode %v", got, fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the file", len(entries))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	root := t.TempDir()
	for name, cfg := range map[string]Config{
		"no root":       {PG: "postgres://x@h/db", Token: "t"},
		"no pg":         {Root: root, Token: "t"},
		"no auth":       {Root: root, PG: "postgres://x@h/db"},
		"login only":    {Root: root, PG: "postgres://x@h/db", Login: "a@b"},
		"unparsable pg": {Root: root, PG: "postgres://x:secretpw@h:notaport/db", Token: "t"},
	} {
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: want an error", name)
			continue
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: error %q leaks the database password", name, err)
		}
	}
}

func mustMkdir(t *testing.T, p string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

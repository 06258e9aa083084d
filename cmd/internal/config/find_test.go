package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "flag.yaml")
	envFile := filepath.Join(dir, "env.yaml")
	local := filepath.Join(dir, "local.yaml")
	system := filepath.Join(dir, "system.yaml")
	missing := filepath.Join(dir, "missing.yaml")
	for _, p := range []string{flag, envFile, local, system} {
		writeFile(t, p, "", 0o600)
	}
	tests := []struct {
		name       string
		flag       string
		env        map[string]string
		candidates []string
		want       string
		wantErr    string // substring; "" means success
	}{
		{"flag wins", flag, map[string]string{EnvVar: envFile}, []string{local, system}, flag, ""},
		{"env next", "", map[string]string{EnvVar: envFile}, []string{local, system}, envFile, ""},
		{"empty env ignored", "", map[string]string{EnvVar: ""}, []string{local, system}, local, ""},
		{"first candidate", "", nil, []string{local, system}, local, ""},
		{"second candidate", "", nil, []string{missing, system}, system, ""},
		{"flag must exist", missing, map[string]string{EnvVar: envFile}, []string{local}, "", "from --config) does not exist"},
		{"env must exist", "", map[string]string{EnvVar: missing}, []string{local}, "", "from $MBACKUP_CONFIG) does not exist"},
		{"flag is a folder", dir, nil, nil, "", "is a directory"},
		{"nothing found", "", nil, []string{missing}, "", "no configuration file found (looked for " + missing + ")"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := Finder{LookupEnv: lookupFrom(tc.env), Candidates: tc.candidates}
			got, err := f.Find(tc.flag)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("Find = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !IsConfigError(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Find = %q, %v; want config error containing %q", got, err, tc.wantErr)
			}
		})
	}
}

func TestFindDefaults(t *testing.T) {
	if got := DefaultCandidates(); len(got) != 2 || got[0] != "mbackup.yaml" || got[1] != "/etc/mbackup/mbackup.yaml" {
		t.Errorf("DefaultCandidates = %q", got)
	}
	// The zero Finder reads the process environment.
	dir := t.TempDir()
	p := filepath.Join(dir, "from-env.yaml")
	writeFile(t, p, "", 0o600)
	t.Setenv(EnvVar, p)
	if got, err := Find(""); err != nil || got != p {
		t.Errorf("Find = %q, %v", got, err)
	}
	t.Setenv(EnvVar, filepath.Join(dir, "gone.yaml"))
	if _, err := Find(""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Find with a missing $%s = %v", EnvVar, err)
	}
}

package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretsRead(t *testing.T) {
	path, env := fullFixture(t)
	cfg, err := Load(path, WithLookupEnv(lookupFrom(env)))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cfg.Env("client-a")
	b, _ := cfg.Env("client-b")
	read := func(f func() (Secret, error)) string {
		t.Helper()
		s, err := f()
		if err != nil {
			t.Fatal(err)
		}
		return s.Value()
	}
	ak, sk, err := cfg.S3Credentials()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"repository (env)":        read(cfg.RepositoryPassword),
		"s3 access key (env)":     ak.Value(),
		"s3 secret key (default)": sk.Value(),
		"jelastic (file)":         read(cfg.JelasticToken),
		"smtp (file, CRLF)":       read(cfg.SMTPPassword),
		"db a (file)":             read(a.DatabasePassword),
		"db a staging (file)":     read(a.Staging.DatabasePassword),
		"db b (in URL)":           read(b.DatabasePassword),
	}
	want := map[string]string{
		"repository (env)":        "repo-pass-1",
		"s3 access key (env)":     "access-key-1",
		"s3 secret key (default)": "secret-key-1",
		"jelastic (file)":         "jelastic-token-1",
		"smtp (file, CRLF)":       "smtp-pass-1",
		"db a (file)":             "db-pass-a",
		"db a staging (file)":     "db-pass-a-staging",
		"db b (in URL)":           "db-pass-b",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}

	// Nothing that prints the configuration shows a secret, even with the
	// secrets read and in hand.
	secrets := []string{"repo-pass-1", "access-key-1", "secret-key-1", "jelastic-token-1", "smtp-pass-1",
		"db-pass-a", "db-pass-b", "hook-token-1"}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	jsonLogger := slog.New(slog.NewJSONHandler(&logs, nil))
	var outputs []string
	for _, v := range []any{cfg, *cfg, a, b, a.Staging, cfg.Notify.Webhook, cfg.Repository, ak, sk} {
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		logger.Info("cfg", "v", v)
		jsonLogger.Info("cfg", "v", v)
		outputs = append(outputs, fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v),
			fmt.Sprintf("%s", v), fmt.Sprintf("%q", v), fmt.Sprintf("%x", v), fmt.Sprintf("%d", v), string(js))
	}
	outputs = append(outputs, logs.String(), b.Database.ConnString(), b.Database.String())
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("output shows secret %q:\n%s", s, out)
			}
		}
	}
	if s := fmt.Sprintf("%v|%+v|%#v|%s|%d", ak, ak, ak, ak, ak); s != "[redacted]|[redacted]|[redacted]|[redacted]|[redacted]" {
		t.Errorf("Secret formats as %q", s)
	}
	if js, _ := json.Marshal(ak); string(js) != `"[redacted]"` {
		t.Errorf("Secret JSON = %s", js)
	}
}

func TestSecretErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.key")
	writeFile(t, empty, "\n", 0o600)
	unreadable := filepath.Join(dir, "unreadable.key")
	writeFile(t, unreadable, "hunter2\n", 0o000)
	tests := []struct {
		name string
		src  SecretSource
		msg  string
		is   error
	}{
		{"missing file", SecretSource{File: filepath.Join(dir, "nope.key")}, "no such file", os.ErrNotExist},
		{"empty file", SecretSource{File: empty}, "is empty", nil},
		{"unset variable", SecretSource{Env: "MB_UNSET", lookup: lookupFrom(nil)}, "environment variable MB_UNSET is not set", nil},
		{"empty variable", SecretSource{Env: "MB_EMPTY", lookup: lookupFrom(map[string]string{"MB_EMPTY": ""})}, "MB_EMPTY is not set", nil},
	}
	if os.Geteuid() != 0 { // root reads anything
		tests = append(tests, struct {
			name string
			src  SecretSource
			msg  string
			is   error
		}{"unreadable file", SecretSource{File: unreadable}, "permission denied", os.ErrPermission})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.src.cfgFile, tc.src.line, tc.src.key = "mbackup.yaml", 7, "repository.password_file"
			s, err := tc.src.Read()
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(ce.Msg, tc.msg) || ce.Line != 7 || ce.Fix == "" {
				t.Fatalf("Read = %v, want *Error containing %q", err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "mbackup.yaml:7: repository.password_file: ") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error = %q", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if !s.IsZero() {
				t.Error("secret returned with an error")
			}
		})
	}
	if s, err := (SecretSource{}).Read(); err != nil || !s.IsZero() {
		t.Errorf("unset source: %v, %v", s, err)
	}
}

func TestNoJelasticToken(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "mbackup.yaml")
	writeFile(t, path, base, 0o600)
	cfg, err := Load(path, WithLookupEnv(lookupFrom(map[string]string{"ROOT": root})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.JelasticToken(); !IsConfigError(err) || !strings.Contains(err.Error(), "jelastic: not configured") {
		t.Errorf("JelasticToken = %v", err)
	}
	if s, err := cfg.SMTPPassword(); err != nil || !s.IsZero() {
		t.Errorf("SMTPPassword = %v, %v", s, err)
	}
	// PW is not set in this environment.
	if _, err := cfg.RepositoryPassword(); !IsConfigError(err) || !strings.Contains(err.Error(), ":3: repository.password_env: environment variable PW is not set") {
		t.Errorf("RepositoryPassword = %v", err)
	}
	if _, _, err := cfg.S3Credentials(); !IsConfigError(err) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID is not set") {
		t.Errorf("S3Credentials = %v", err)
	}
}

func TestModeWarnings(t *testing.T) {
	tests := []struct {
		name           string
		cfgMode, key   os.FileMode
		wantCfg, wantK bool
	}{
		{"all private", 0o600, 0o600, false, false},
		{"secret world-readable", 0o600, 0o644, false, true},
		{"secret group-readable", 0o600, 0o640, false, true},
		{"config world-readable", 0o644, 0o400, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			key := filepath.Join(dir, "repo.key")
			writeFile(t, key, "hunter2\n", tc.key)
			path := filepath.Join(dir, "mbackup.yaml")
			writeFile(t, path, "repository:\n  url: repo\n  password_file: repo.key\n", tc.cfgMode)
			cfg, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Repository.URL.Path != filepath.Join(dir, "repo") || cfg.Repository.Password.File != key {
				t.Errorf("relative paths not resolved against the file's folder: %+v", cfg.Repository)
			}
			var gotCfg, gotKey bool
			for _, w := range cfg.Warnings {
				if !strings.HasPrefix(w, "warning: ") || !strings.Contains(w, "chmod 600") || strings.Contains(w, "hunter2") {
					t.Errorf("bad warning %q", w)
				}
				gotCfg = gotCfg || strings.Contains(w, path)
				gotKey = gotKey || strings.Contains(w, key)
			}
			if gotCfg != tc.wantCfg || gotKey != tc.wantK || len(cfg.Warnings) != btoi(tc.wantCfg)+btoi(tc.wantK) {
				t.Errorf("Warnings = %q", cfg.Warnings)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadContractExample(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "example.yaml"), SkipPathChecks(), WithLookupEnv(lookupFrom(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Location.String() != "Europe/Zurich" {
		t.Errorf("Location = %v", cfg.Location)
	}
	r := cfg.Repository
	if r.URL != (RepositoryURL{Kind: KindLocal, Path: "/var/lib/mbackup/repo"}) {
		t.Errorf("URL = %+v", r.URL)
	}
	if r.Password.File != "/etc/mbackup/repo.key" || r.Password.Env != "" {
		t.Errorf("Password = %+v", r.Password)
	}
	if r.S3.AccessKey.Env != "AWS_ACCESS_KEY_ID" || r.S3.SecretKey.Env != "AWS_SECRET_ACCESS_KEY" || r.S3.Region != "ch-gva-2" {
		t.Errorf("S3 = %+v", r.S3)
	}
	if r.PackSize != DefaultPackSize || r.Compression != "auto" {
		t.Errorf("PackSize, Compression = %d, %q", r.PackSize, r.Compression)
	}
	if cfg.Jelastic == nil || cfg.Jelastic.URL != "https://app.example-hoster.ch/1.0" || cfg.Jelastic.Token.Env != "JELASTIC_TOKEN" {
		t.Errorf("Jelastic = %+v", cfg.Jelastic)
	}
	// Unset settings take their defaults.
	if cfg.Concurrency != 2 || cfg.StateDir != "/var/lib/mbackup/state" || cfg.Listen != "127.0.0.1:9187" ||
		cfg.LogFormat != "text" || cfg.Retry != (Retry{3, 5 * time.Minute}) ||
		cfg.Prune != (Prune{10, 24 * time.Hour}) || cfg.Maintenance.CheckSubset != 5 ||
		!cfg.Maintenance.Prune.IsZero() || !cfg.Maintenance.Check.IsZero() ||
		!slices.Equal(cfg.Notify.On, []string{"failure", "recovery"}) {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if got := cfg.EnvNames(); !slices.Equal(got, []string{"client-x"}) {
		t.Fatalf("EnvNames = %v", got)
	}
	e, err := cfg.Env("client-x")
	if err != nil {
		t.Fatal(err)
	}
	if e.Database.ConnString() != "postgres://backup@db.client-x.internal:5432/moodle?sslmode=require" ||
		e.Database.Address() != "db.client-x.internal:5432/moodle" || e.Database.User != "backup" {
		t.Errorf("Database = %v (%s)", e.Database, e.Database.Address())
	}
	if e.DatabasePasswordFile != "/etc/mbackup/client-x.pgpass" || e.Moodledata != "/srv/client-x/moodledata" ||
		e.ConfigPHP != "/srv/client-x/www/config.php" || e.JelasticEnv != "client-x" || !slices.Equal(e.Tags, []string{"moodle35"}) {
		t.Errorf("environment = %+v", e)
	}
	if e.Schedule.Spec != "0 2 * * *" {
		t.Errorf("Schedule = %q", e.Schedule.Spec)
	}
	want := Retention{Last: 3, Daily: 14, Weekly: 8, Monthly: 12, Yearly: 3}
	if !retentionEqual(e.Retention, want) {
		t.Errorf("Retention = %+v, want %+v", e.Retention, want)
	}
	if !slices.Equal(e.Exclude, DefaultExclude()) {
		t.Errorf("Exclude = %v", e.Exclude)
	}
	s := e.Staging
	if s == nil {
		t.Fatal("no staging")
	}
	if s.JelasticEnv != "client-x-staging" || s.Database.Address() != "db.client-x-staging.internal:5432/moodle" ||
		s.Moodledata != "/srv/client-x-staging/moodledata" || s.ConfigPHP != "/srv/client-x-staging/www/config.php" ||
		s.WWWRoot != "https://client-x-staging.example.ch" || s.DivertEmailsTo != "qa@example.ch" || !s.Schedule.IsZero() {
		t.Errorf("Staging = %+v", s)
	}
}

func retentionEqual(a, b Retention) bool {
	return a.Last == b.Last && a.Hourly == b.Hourly && a.Daily == b.Daily && a.Weekly == b.Weekly &&
		a.Monthly == b.Monthly && a.Yearly == b.Yearly && a.Within == b.Within && slices.Equal(a.Tags, b.Tags)
}

// fullFixture copies testdata/full.yaml into a temporary folder with the
// folders and secret files it names, and returns its path and environment.
func fullFixture(t *testing.T) (string, map[string]string) {
	t.Helper()
	root := t.TempDir()
	mkdirs(t, filepath.Join(root, "client-a/moodledata"), filepath.Join(root, "client-b/moodledata"))
	writeFile(t, filepath.Join(root, "client-a/www/config.php"), "<?php\n", 0o644)
	writeFile(t, filepath.Join(root, "secrets/jelastic.token"), "jelastic-token-1\n", 0o600)
	writeFile(t, filepath.Join(root, "secrets/smtp.pass"), "smtp-pass-1\r\n", 0o600)
	writeFile(t, filepath.Join(root, "secrets/client-a.pgpass"), "db-pass-a\n", 0o600)
	writeFile(t, filepath.Join(root, "secrets/client-a-staging.pgpass"), "db-pass-a-staging", 0o600)
	for _, v := range []string{"15", "17"} {
		for _, p := range []string{"pg_dump", "pg_restore"} {
			writeFile(t, filepath.Join(root, "pg", v, "bin", p), "#!/bin/sh\n", 0o755)
		}
	}
	data, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "mbackup.yaml")
	writeFile(t, path, string(data), 0o600)
	return path, map[string]string{
		"ROOT":                  root,
		"MBACKUP_PASSWORD":      "repo-pass-1",
		"EXO_KEY":               "access-key-1",
		"AWS_SECRET_ACCESS_KEY": "secret-key-1",
		"HOOK_TOKEN":            "hook-token-1",
		"CLIENT_B_DBPASS":       "db-pass-b",
	}
}

func TestLoadFull(t *testing.T) {
	path, env := fullFixture(t)
	root := env["ROOT"]
	cfg, err := Load(path, WithLookupEnv(lookupFrom(env)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != path || cfg.Timezone != "Europe/Zurich" || cfg.Concurrency != 4 || cfg.StateDir != root+"/state" ||
		cfg.Listen != "0.0.0.0:9187" || cfg.LogFormat != "json" {
		t.Errorf("top level = %+v", cfg)
	}
	wantURL := RepositoryURL{Kind: KindS3, Endpoint: "sos-ch-gva-2.exo.io:8443", Secure: true, Bucket: "mbackup-bucket", Prefix: "fleet/prod"}
	r := cfg.Repository
	if r.URL != wantURL || r.URL.String() != "s3:https://sos-ch-gva-2.exo.io:8443/mbackup-bucket/fleet/prod" {
		t.Errorf("URL = %+v (%s)", r.URL, r.URL)
	}
	if r.PackSize != 32<<20 || r.Compression != "better" || r.S3.AccessKey.Env != "EXO_KEY" ||
		r.S3.SecretKey.Env != "AWS_SECRET_ACCESS_KEY" || r.Password.Env != "MBACKUP_PASSWORD" {
		t.Errorf("Repository = %+v", r)
	}
	if cfg.Jelastic.Token.File != root+"/secrets/jelastic.token" {
		t.Errorf("Jelastic = %+v", cfg.Jelastic)
	}
	if cfg.Retry != (Retry{5, 90 * time.Second}) || cfg.Prune != (Prune{5, 48 * time.Hour}) {
		t.Errorf("Retry, Prune = %+v, %+v", cfg.Retry, cfg.Prune)
	}
	m := cfg.Maintenance
	if m.Prune.Spec != "0 4 * * 0" || m.Check.Spec != "CRON_TZ=UTC 0 5 1 * *" || m.CheckSubset != 2.5 {
		t.Errorf("Maintenance = %+v", m)
	}
	n := cfg.Notify
	if !slices.Equal(n.On, []string{"failure"}) || n.Webhook == nil || n.Email == nil {
		t.Fatalf("Notify = %+v", n)
	}
	if n.Webhook.URL.Value() != "https://hooks.example.ch/services/hook-token-1" ||
		n.Webhook.Headers["Authorization"].Value() != "Bearer hook-token-1" {
		t.Errorf("Webhook not expanded")
	}
	em := n.Email
	if em.SMTPHost != "mail.example.ch" || em.SMTPPort != 465 || em.From != "mbackup <backup@example.ch>" ||
		!slices.Equal(em.To, []string{"ops@example.ch", "oncall@example.ch"}) || em.Username != "backup" ||
		em.Password.File != root+"/secrets/smtp.pass" || em.StartTLS {
		t.Errorf("Email = %+v", em)
	}
	wantDefaultExclude := append(DefaultExclude(), "filter/tex")
	if cfg.Defaults.Schedule.Spec != "@daily" || !slices.Equal(cfg.Defaults.Exclude, wantDefaultExclude) ||
		!retentionEqual(cfg.Defaults.Retention, Retention{Last: 3, Daily: 14, Weekly: 8, Monthly: 12, Yearly: 3, Within: "2d"}) {
		t.Errorf("Defaults = %+v", cfg.Defaults)
	}

	a, err := cfg.Env("client-a")
	if err != nil {
		t.Fatal(err)
	}
	if a.Schedule.Spec != "CRON_TZ=Europe/London 30 1 * * *" || a.Database.Address() != "localhost:5432/client_a" ||
		a.DatabasePasswordFile != root+"/secrets/client-a.pgpass" || a.ConfigPHP != root+"/client-a/www/config.php" ||
		!slices.Equal(a.Tags, []string{"moodle43", "big"}) || !slices.Equal(a.Exclude, wantDefaultExclude) {
		t.Errorf("client-a = %+v", a)
	}
	// retention replaces field by field: daily and tags from the
	// environment, the rest from defaults.
	if want := (Retention{Last: 3, Daily: 30, Weekly: 8, Monthly: 12, Yearly: Unlimited, Within: "2d", Tags: []string{"keep"}}); !retentionEqual(a.Retention, want) {
		t.Errorf("client-a retention = %+v, want %+v", a.Retention, want)
	}
	// postgres_bin from defaults; client-b's own, relative to the file.
	if a.PostgresBin != root+"/pg/15/bin" || a.PgDump() != root+"/pg/15/bin/pg_dump" || a.PgRestore() != root+"/pg/15/bin/pg_restore" {
		t.Errorf("client-a postgres_bin %q: pg_dump %q, pg_restore %q", a.PostgresBin, a.PgDump(), a.PgRestore())
	}
	if s := a.Staging; s == nil || s.Database.Address() != "127.0.0.1:5433/client_a" || s.Schedule.Spec != "0 6 * * 1" ||
		s.DatabasePasswordFile != root+"/secrets/client-a-staging.pgpass" {
		t.Errorf("client-a staging = %+v", a.Staging)
	}

	b, err := cfg.Env("client-b")
	if err != nil {
		t.Fatal(err)
	}
	if !b.Schedule.IsZero() {
		t.Errorf("client-b schedule %q should be off", b.Schedule.Spec)
	}
	if b.PgDump() != root+"/pg/17/bin/pg_dump" {
		t.Errorf("client-b pg_dump = %q", b.PgDump())
	}
	if want := []string{"cache", "temp", "muc"}; !slices.Equal(b.Exclude, want) {
		t.Errorf("client-b exclude = %v, want %v", b.Exclude, want)
	}
	if want := (Retention{Last: 1, Daily: 14, Weekly: 8, Monthly: 12, Yearly: 3, Within: "2d"}); !retentionEqual(b.Retention, want) {
		t.Errorf("client-b retention = %+v, want %+v", b.Retention, want)
	}
	if got := b.Database.ConnString(); got != "postgres://backup@db.client-b.internal:5432/moodle" {
		t.Errorf("client-b ConnString = %q", got)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "environments.client-b.database embeds a password") {
		t.Errorf("Warnings = %q", cfg.Warnings)
	}

	if got := cfg.EnvNames(); !slices.Equal(got, []string{"client-a", "client-b"}) {
		t.Errorf("EnvNames = %v", got)
	}
	names := func(es []*Environment) (out []string) {
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	if got := names(cfg.ByTag("moodle43")); !slices.Equal(got, []string{"client-a", "client-b"}) {
		t.Errorf("ByTag(moodle43) = %v", got)
	}
	if got := names(cfg.ByTag("big")); !slices.Equal(got, []string{"client-a"}) {
		t.Errorf("ByTag(big) = %v", got)
	}
	if got := cfg.ByTag("nope"); len(got) != 0 {
		t.Errorf("ByTag(nope) = %v", names(got))
	}
	if got := names(cfg.Environments()); !slices.Equal(got, []string{"client-a", "client-b"}) {
		t.Errorf("Environments = %v", got)
	}

	// Env hands out copies.
	a.Tags[0] = "changed"
	if a2, _ := cfg.Env("client-a"); a2.Tags[0] != "moodle43" {
		t.Error("Env returned shared state")
	}
	_, err = cfg.Env("client-z")
	if !IsConfigError(err) || !strings.Contains(err.Error(), `no environment "client-z" (fix: use one of: client-a, client-b)`) {
		t.Errorf("Env(client-z) = %v", err)
	}
}

func TestSchedulesUseTimezone(t *testing.T) {
	zurich, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC) // 01:00 in Zurich
	tests := []struct {
		spec string
		want time.Time
	}{
		{"0 2 * * *", time.Date(2024, 1, 10, 1, 0, 0, 0, time.UTC)},
		{"CRON_TZ=UTC 0 2 * * *", time.Date(2024, 1, 10, 2, 0, 0, 0, time.UTC)},
		{"@daily", time.Date(2024, 1, 10, 23, 0, 0, 0, time.UTC)},
		{"@every 1h", from.Add(time.Hour)},
	}
	for _, tc := range tests {
		s, err := ParseSchedule(tc.spec, zurich)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tc.spec, err)
			continue
		}
		if got := s.Next(from); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("%q.Next(%v) = %v, want %v", tc.spec, from, got, tc.want)
		}
	}
	if !(Schedule{}).Next(from).IsZero() {
		t.Error("zero Schedule fires")
	}
}

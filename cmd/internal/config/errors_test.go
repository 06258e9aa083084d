package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Lines 1-3 of every case below.
const base = `repository:
  url: ${ROOT}/repo
  password_env: PW
`

// Lines 4-7 when a case starts with an environment.
const envX = base + `environments:
  client-x:
    database: postgres://backup@db.x/moodle
    moodledata: ${ROOT}/x/moodledata
`

// secretValues appear in the environment of every case and must never
// appear in an error.
var secretValues = []string{"topsecret-XYZ", "hunter2"}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		key  string
		msg  string // substring of Msg
	}{
		// Structure.
		{"unknown top-level key", base + "colour: blue\n", 4, "colour", "unknown key"},
		{"unknown key suggests", base + "  passwrd_file: /k\n", 4, "repository.passwrd_file", "unknown key"},
		{"unknown env key", envX + "    moodle_data: /x\n", 8, "environments.client-x.moodle_data", "unknown key"},
		{"string for a mapping", "repository: /srv/repo\n", 1, "repository", `expected a mapping, got "/srv/repo"`},
		{"string for a list", envX + "    exclude: cache\n", 8, "environments.client-x.exclude", `expected a list, got "cache"`},
		{"list for a string", base + "listen: [a, b]\n", 4, "listen", "expected a single value, got a list"},
		{"duplicate key", base + "concurrency: 1\nconcurrency: 2\n", 5, "concurrency", "duplicate key (first at line 4)"},
		{"yaml syntax", base + "listen: [a\n", 4, "", "invalid YAML: did not find expected ',' or ']'"},
		{"yaml scanner", base + "listen: a: b\n", 4, "", "invalid YAML: mapping values are not allowed"},
		{"yaml block", base + "defaults:\n  exclude:\n    - a\n    b: c\n", 6, "", "invalid YAML"},
		{"unknown anchor", base + "listen: *nope\n", 0, "", "unknown anchor"},
		{"two documents", base + "---\nlisten: x\n", 4, "", "second YAML document"},
		{"not a mapping", "- a\n- b\n", 1, "", "must be a mapping"},
		{"merge cycle", base + "defaults: &d {<<: *d}\n", 4, "defaults", "merges a mapping into itself"},
		{"alias bomb", base + "defaults:\n  retention: " + aliasBomb() + "\n", 5, "defaults.retention", "too many keys"},
		{"missing repository", "concurrency: 2\n", 0, "repository", "missing"},
		{"missing url", "repository:\n  password_env: PW\n", 1, "repository", "missing url"},
		{"missing password", "repository:\n  url: /r\n", 1, "repository", "missing password_file or password_env"},
		{"both passwords", base + "  password_file: /k\n", 4, "repository", "both password_file and password_env"},
		{"password value as env name", "repository:\n  url: /r\n  password_env: ${SECRET}\n", 3, "repository.password_env", "is not an environment variable name"},
		{"bad env name", base + "environments:\n  Client_X:\n    database: postgres://h/d\n", 5, "environments.Client_X", "bad name"},
		{"env name too long", base + "environments:\n  " + strings.Repeat("a", 34) + ":\n    database: postgres://h/d\n", 5, "environments." + strings.Repeat("a", 34), "at most 33"},
		{"missing database", base + "environments:\n  client-x:\n    moodledata: ${ROOT}/x/moodledata\n", 5, "environments.client-x", "missing database"},
		{"empty environment", base + "environments:\n  client-x:\n", 5, "environments.client-x", "no settings"},

		// Variables.
		{"undefined variable", base + "state_dir: ${NOPE}/state\n", 4, "state_dir", "environment variable NOPE is not set"},
		{"unterminated variable", base + "state_dir: ${ROOT/state\n", 4, "state_dir", "unterminated ${"},
		{"bad variable name", base + "state_dir: ${1X}\n", 4, "state_dir", `bad variable name "1X"`},

		// Values.
		{"bad cron hour", base + "defaults:\n  schedule: \"0 25 * * *\"\n", 5, "defaults.schedule", `bad cron spec "0 25 * * *": hour field "25": end of range (25) above maximum (23)`},
		{"bad cron fields", envX + "    schedule: \"0 2 * *\"\n", 8, "environments.client-x.schedule", "expected exactly 5 fields"},
		{"bad cron descriptor", base + "maintenance:\n  prune: \"@fortnightly\"\n", 5, "maintenance.prune", "unrecognized descriptor"},
		{"bad cron tz", base + "maintenance:\n  check: CRON_TZ=Mars/Base 0 1 * * *\n", 5, "maintenance.check", "bad location Mars/Base"},
		{"cron tz without spec", base + "maintenance:\n  check: CRON_TZ=UTC\n", 5, "maintenance.check", "no schedule after the time zone"},
		{"cron never fires", base + "defaults:\n  schedule: \"0 0 30 2 *\"\n", 5, "defaults.schedule", "never fires"},
		{"bad timezone", base + "timezone: Europe/Zurch\n", 4, "timezone", `unknown time zone "Europe/Zurch"`},
		{"ftp repository", "repository:\n  url: ftp://host/r\n  password_env: PW\n", 2, "repository.url", `unsupported repository URL scheme "ftp"`},
		{"s3 without bucket", "repository:\n  url: s3:https://s3.example.ch/\n  password_env: PW\n", 2, "repository.url", "names no bucket"},
		{"s3 without scheme", "repository:\n  url: s3:s3.example.ch/bucket\n  password_env: PW\n", 2, "repository.url", "bad S3 URL"},
		{"s3 with credentials", "repository:\n  url: s3:https://key:hunter2@s3.example.ch/b\n  password_env: PW\n", 2, "repository.url", "must not contain credentials"},
		{"file URL with host", "repository:\n  url: file://host/r\n  password_env: PW\n", 2, "repository.url", "bad file URL"},
		{"mysql database", base + "environments:\n  client-x:\n    database: mysql://u:hunter2@h/moodle\n    moodledata: ${ROOT}/x/moodledata\n", 6, "environments.client-x.database", "is not a postgres:// URL"},
		{"database without name", base + "environments:\n  client-x:\n    database: postgres://u:hunter2@h:5432\n    moodledata: ${ROOT}/x/moodledata\n", 6, "environments.client-x.database", "names no database"},
		{"database bad port", base + "environments:\n  client-x:\n    database: postgres://u:hunter2@h:99999/m\n    moodledata: ${ROOT}/x/moodledata\n", 6, "environments.client-x.database", "bad port"},
		{"database unparsable", base + "environments:\n  client-x:\n    database: \"postgres://u:hunter2@h:x y/m\"\n    moodledata: ${ROOT}/x/moodledata\n", 6, "environments.client-x.database", "bad URL"},
		{"database password in query", base + "environments:\n  client-x:\n    database: postgres://u@h/?password=hunter2\n    moodledata: ${ROOT}/x/moodledata\n", 6, "environments.client-x.database", "names no database"},
		{"missing moodledata folder", base + "environments:\n  client-x:\n    database: postgres://h/m\n    moodledata: ${ROOT}/nope\n", 7, "environments.client-x.moodledata", "does not exist"},
		{"moodledata is a file", base + "environments:\n  client-x:\n    database: postgres://h/m\n    moodledata: ${ROOT}/x/config.php\n", 7, "environments.client-x.moodledata", "is not a folder"},
		{"missing config.php", envX + "    config_php: ${ROOT}/x/nope.php\n", 8, "environments.client-x.config_php", "does not exist"},
		{"missing postgres_bin", envX + "    postgres_bin: ${ROOT}/nope\n", 8, "environments.client-x.postgres_bin", "does not exist"},
		{"postgres_bin is a file", envX + "    postgres_bin: ${ROOT}/pgbin/pg_dump\n", 8, "environments.client-x.postgres_bin", "is not a folder"},
		{"postgres_bin without pg_dump", base + "defaults:\n  postgres_bin: ${ROOT}/x\nenvironments:\n  client-x:\n    database: postgres://h/m\n    moodledata: ${ROOT}/x/moodledata\n", 5, "defaults.postgres_bin", "pg_dump does not exist"},
		{"postgres_bin with a pg_restore not executable", envX + "    postgres_bin: ${ROOT}/pgbin\n", 8, "environments.client-x.postgres_bin", "pg_restore is not executable"},
		{"empty postgres_bin", envX + "    postgres_bin: \"\"\n", 8, "environments.client-x.postgres_bin", "empty"},
		{"bad pack size", base + "  pack_size: 16XB\n", 4, "repository.pack_size", `unknown unit "XB"`},
		{"pack size too small", base + "  pack_size: 1MiB\n", 4, "repository.pack_size", "out of range"},
		{"bad compression", base + "  compression: zstd\n", 4, "repository.compression", `unknown compression "zstd"`},
		{"percent without %", base + "maintenance:\n  check_subset: \"5\"\n", 5, "maintenance.check_subset", "bad percentage"},
		{"percent above 100", base + "maintenance:\n  check_subset: 150%\n", 5, "maintenance.check_subset", "out of range"},
		{"percent zero subset", base + "maintenance:\n  check_subset: 0%\n", 5, "maintenance.check_subset", "out of range"},
		{"negative max_unused", base + "prune:\n  max_unused: -1%\n", 5, "prune.max_unused", "out of range"},
		{"bad duration", base + "retry:\n  delay: 5 minutes\n", 5, "retry.delay", `bad duration "5 minutes"`},
		{"negative duration", base + "prune:\n  grace: -1h\n", 5, "prune.grace", "bad duration"},
		{"zero attempts", base + "retry:\n  attempts: 0\n", 5, "retry.attempts", "below the minimum 1"},
		{"concurrency word", base + "concurrency: two\n", 4, "concurrency", `expected a whole number, got "two"`},
		{"concurrency zero", base + "concurrency: 0\n", 4, "concurrency", "below the minimum 1"},
		{"bad listen", base + "listen: \"9187\"\n", 4, "listen", "want HOST:PORT"},
		{"bad log format", base + "log_format: xml\n", 4, "log_format", `unknown log format "xml"`},
		{"bad within", base + "defaults:\n  retention: {within: 2 weeks}\n", 5, "defaults.retention.within", `bad duration "2 weeks"`},
		{"within unit twice", base + "defaults:\n  retention: {within: 1d2d}\n", 5, "defaults.retention.within", "unit d given twice"},
		{"negative retention", envX + "    retention:\n      daily: -2\n", 9, "environments.client-x.retention.daily", "below the minimum -1"},
		{"unknown retention key", base + "defaults:\n  retention: {dayly: 3}\n", 5, "defaults.retention.dayly", "unknown key"},
		{"absolute exclude", envX + "    exclude: [cache, /etc]\n", 8, "environments.client-x.exclude[1]", "must be relative to moodledata"},
		{"exclude outside", base + "defaults:\n  exclude_add:\n    - ../other\n", 6, "defaults.exclude_add[0]", "points outside moodledata"},
		{"exclude everything", base + "defaults:\n  exclude: [.]\n", 5, "defaults.exclude[0]", "all of moodledata"},
		{"bad tag", envX + "    tags: [a b]\n", 8, "environments.client-x.tags[0]", "bad tag"},
		{"bad bool", base + "notify:\n  email:\n    smtp_host: m\n    from: a@b.ch\n    to: [c@d.ch]\n    starttls: maybe\n", 9, "notify.email.starttls", "expected true or false"},
		{"bad notify event", base + "notify:\n  on: [failure, success]\n", 5, "notify.on[1]", `unknown event "success"`},
		{"bad email address", base + "notify:\n  email:\n    smtp_host: m\n    from: not-an-address\n    to: [c@d.ch]\n", 7, "notify.email.from", "bad e-mail address"},
		{"email without to", base + "notify:\n  email:\n    smtp_host: m\n    from: a@b.ch\n", 5, "notify.email", "missing to"},
		{"smtp password without user", base + "notify:\n  email:\n    smtp_host: m\n    from: a@b.ch\n    to: [c@d.ch]\n    password_env: SMTP_PASS\n", 9, "notify.email", "needs a username"},
		{"webhook not http", base + "notify:\n  webhook:\n    url: ftp://hooks/${SECRET}\n", 6, "notify.webhook.url", "not an http:// or https:// URL"},
		{"webhook header line break", base + "notify:\n  webhook:\n    url: https://h/\n    headers:\n      Authorization: \"Bearer ${SECRET}\\nX: y\"\n", 8, "notify.webhook.headers.Authorization", "line break"},
		{"jelastic without token", base + "jelastic:\n  url: https://j/1.0\n", 4, "jelastic", "missing token_env or token_file"},
		{"jelastic bad url", base + "jelastic:\n  url: app.example.ch\n  token_env: T\n", 5, "jelastic.url", "not an http:// or https:// URL"},
		{"bad jelastic_env", envX + "    jelastic_env: Client_X\n", 8, "environments.client-x.jelastic_env", "bad name"},

		// Staging and cross-environment safety.
		{"staging missing keys", base + "jelastic: {url: https://j/1.0, token_env: T}\nenvironments:\n  client-x:\n    database: postgres://h/m\n    moodledata: ${ROOT}/x/moodledata\n    jelastic_env: client-x\n    staging:\n      jelastic_env: client-x-staging\n", 10, "environments.client-x.staging", "missing database, moodledata, config_php, wwwroot"},
		{"staging database is production", stagingCase("postgres://moodle@127.0.0.1:5432/moodle", "${ROOT}/s/moodledata", "client-x-staging"), 12, "environments.client-x.staging.database", "same database (127.0.0.1:5432/moodle) as environments.client-x.database (line 7)"},
		{"staging moodledata is production", stagingCase("postgres://db.s/moodle", "${ROOT}/x/moodledata/", "client-x-staging"), 13, "environments.client-x.staging.moodledata", "same folder as environments.client-x.moodledata (line 8)"},
		{"staging moodledata inside production", stagingCase("postgres://db.s/moodle", "${ROOT}/x/moodledata/staging", "client-x-staging"), 13, "environments.client-x.staging.moodledata", "is inside environments.client-x.moodledata"},
		{"staging jelastic_env is production", stagingCase("postgres://db.s/moodle", "${ROOT}/s/moodledata", "client-x"), 11, "environments.client-x.staging.jelastic_env", `same Jelastic environment "client-x"`},
		{"staging without jelastic section", base + "environments:\n  client-x:\n    database: postgres://db.x/m\n    moodledata: ${ROOT}/x/moodledata\n    jelastic_env: client-x\n    staging:\n      jelastic_env: client-x-staging\n      database: postgres://db.s/m\n      moodledata: ${ROOT}/s\n      config_php: ${ROOT}/s/config.php\n      wwwroot: https://s.example.ch\n", 9, "environments.client-x.staging", "needs the jelastic section"},
		{"staging without production jelastic_env", strings.Replace(stagingCase("postgres://db.s/moodle", "${ROOT}/s/moodledata", "client-x-staging"), "    jelastic_env: client-x\n", "", 1), 9, "environments.client-x.staging", "needs the environment's own jelastic_env"},
		{"staging wwwroot slash", stagingCaseWWW("https://s.example.ch/"), 15, "environments.client-x.staging.wwwroot", "must not end with /"},
		{"staging divert not plain", stagingCase("postgres://db.s/moodle", "${ROOT}/s/moodledata", "client-x-staging") + "      divert_emails_to: QA <qa@example.ch>\n", 16, "environments.client-x.staging.divert_emails_to", "bad e-mail address"},
		{"staging is other production", base + "jelastic: {url: https://j/1.0, token_env: T}\nenvironments:\n  client-a:\n    database: postgres://db.a/moodle\n    moodledata: ${ROOT}/x/moodledata\n  client-b:\n    database: postgres://db.b/moodle\n    moodledata: ${ROOT}/s\n    jelastic_env: client-b\n    staging:\n      jelastic_env: client-b-staging\n      database: postgres://db.a:5432/moodle\n      moodledata: ${ROOT}/s2\n      config_php: ${ROOT}/s2/config.php\n      wwwroot: https://s.example.ch\n", 15, "environments.client-b.staging.database", "same database (db.a:5432/moodle) as environments.client-a.database (line 7)"},
		{"two environments share a database", base + "environments:\n  client-a:\n    database: postgres://DB.A/moodle\n    moodledata: ${ROOT}/x/moodledata\n  client-b:\n    database: postgres://db.a:5432/moodle?sslmode=require\n    moodledata: ${ROOT}/s\n", 9, "environments.client-b.database", "same database (db.a:5432/moodle) as environments.client-a.database (line 6)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			mkdirs(t, filepath.Join(root, "x/moodledata"), filepath.Join(root, "s"))
			writeFile(t, filepath.Join(root, "x/config.php"), "<?php\n", 0o600)
			writeFile(t, filepath.Join(root, "pgbin/pg_dump"), "#!/bin/sh\n", 0o755)
			writeFile(t, filepath.Join(root, "pgbin/pg_restore"), "#!/bin/sh\n", 0o644)
			path := filepath.Join(root, "mbackup.yaml")
			writeFile(t, path, tc.yaml, 0o600)
			env := map[string]string{"ROOT": root, "SECRET": secretValues[0]}

			cfg, err := Load(path, WithLookupEnv(lookupFrom(env)))
			if err == nil {
				t.Fatalf("Load succeeded (%+v); want error at line %d", cfg, tc.line)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %q is not a *config.Error", err, err)
			}
			var many Errors
			if errors.As(err, &many) {
				t.Fatalf("want one error, got %d:\n%v", len(many), err)
			}
			if ce.File != path || ce.Line != tc.line || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.msg) {
				t.Fatalf("got  %q\nwant line %d, key %q, message containing %q", err, tc.line, tc.key, tc.msg)
			}
			text := err.Error()
			prefix := path + ":" + fmt.Sprint(tc.line) + ": "
			if tc.line == 0 {
				prefix = path + ": "
			}
			if !strings.HasPrefix(text, prefix) || strings.Contains(text, "\n") || ce.Fix == "" || !strings.HasSuffix(text, ")") {
				t.Errorf("not one line of the form FILE:LINE: KEY: MSG (fix: FIX): %q", text)
			}
			for _, s := range secretValues {
				if strings.Contains(text, s) {
					t.Errorf("error shows secret %q: %s", s, text)
				}
			}
		})
	}
}

func stagingCase(db, moodledata, jelasticEnv string) string {
	return base + `jelastic: {url: https://j/1.0, token_env: T}
environments:
  client-x:
    database: postgres://localhost/moodle
    moodledata: ${ROOT}/x/moodledata
    jelastic_env: client-x
    staging:
      jelastic_env: ` + jelasticEnv + `
      database: ` + db + `
      moodledata: ` + moodledata + `
      config_php: ${ROOT}/s/config.php
      wwwroot: https://s.example.ch
`
}

func stagingCaseWWW(wwwroot string) string {
	return strings.Replace(stagingCase("postgres://db.s/moodle", "${ROOT}/s/moodledata", "client-x-staging"),
		"wwwroot: https://s.example.ch", "wwwroot: "+wwwroot, 1)
}

func TestLoadSeveralErrors(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "mbackup.yaml")
	writeFile(t, path, base+"log_format: xml\nconcurrency: 0\ncolour: red\n", 0o600)
	_, err := Load(path, WithLookupEnv(lookupFrom(map[string]string{"ROOT": root})))
	var many Errors
	if !errors.As(err, &many) || len(many) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	for i, want := range []string{":4: log_format:", ":5: concurrency:", ":6: colour:"} {
		if !strings.HasPrefix(lines[i], path+want) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], path+want)
		}
	}
	if !IsConfigError(err) {
		t.Error("IsConfigError = false")
	}
}

func TestLoadIOErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	if !IsConfigError(err) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// A folder cannot be read: an I/O error, not a configuration error.
	_, err = Load(dir)
	if err == nil || IsConfigError(err) {
		t.Errorf("folder: %v", err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	writeFile(t, empty, "# nothing\n", 0o600)
	if _, err := Load(empty); !IsConfigError(err) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
}

func TestUnknownKeyFix(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "mbackup.yaml")
	writeFile(t, path, "repository:\n  url: /r\n  passwrd_file: /k\n", 0o600)
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), `(fix: did you mean "password_file"?)`) {
		t.Errorf("got %v", err)
	}
	writeFile(t, path, base+"zzz: 1\n", 0o600)
	_, err = Load(path, WithLookupEnv(lookupFrom(map[string]string{"ROOT": root})))
	if err == nil || !strings.Contains(err.Error(), "known keys here: concurrency, defaults,") {
		t.Errorf("got %v", err)
	}
}

func TestSkipPathChecks(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "mbackup.yaml")
	writeFile(t, path, base+"environments:\n  client-x:\n    database: postgres://h/m\n    moodledata: /nonexistent/moodledata\n    config_php: /nonexistent/config.php\n", 0o600)
	env := WithLookupEnv(lookupFrom(map[string]string{"ROOT": root}))
	if _, err := Load(path, env); err == nil {
		t.Fatal("missing moodledata accepted without SkipPathChecks")
	}
	cfg, err := Load(path, env, SkipPathChecks())
	if err != nil {
		t.Fatal(err)
	}
	e, _ := cfg.Env("client-x")
	err = e.CheckPaths()
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 7 || ce.Key != "environments.client-x.moodledata" || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CheckPaths = %v", err)
	}
}

// aliasBomb is a retention mapping that merges 10 copies of a mapping that
// merges 10 copies of ... (7 levels): 10^7 merged keys if expanded, one line.
func aliasBomb() string {
	def := "&a0 {last: 1}"
	for i := 1; i <= 7; i++ {
		refs := strings.Repeat(fmt.Sprintf(", *a%d", i-1), 9)
		def = fmt.Sprintf("&a%d {<<: [%s%s]}", i, def, refs)
	}
	return def
}

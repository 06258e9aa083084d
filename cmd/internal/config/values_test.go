package config

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := lookupFrom(map[string]string{"A": "alpha", "EMPTY": "", "B_2": "b"})
	tests := []struct {
		in, want string
		err      string
	}{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x-${A}-${B_2}-y", "x-alpha-b-y", ""},
		{"${EMPTY}", "", ""},
		{"$A and $", "$A and $", ""},
		{"$${A}", "${A}", ""},
		{"cost $5", "cost $5", ""},
		{"${MISSING}", "", "environment variable MISSING is not set"},
		{"${A", "", "unterminated"},
		{"${}", "", "bad variable name"},
		{"${A-B}", "", "bad variable name"},
	}
	for _, tc := range tests {
		d := &decoder{file: "f.yaml", lookup: env}
		got, ok := d.expand(tc.in, 3, "k")
		if tc.err == "" {
			if !ok || got != tc.want || len(d.errs) != 0 {
				t.Errorf("expand(%q) = %q, %v, %v; want %q", tc.in, got, ok, d.errs, tc.want)
			}
			continue
		}
		if ok || len(d.errs) != 1 || !strings.Contains(d.errs[0].Msg, tc.err) || d.errs[0].Line != 3 {
			t.Errorf("expand(%q) = %q, %v, %v; want error %q", tc.in, got, ok, d.errs, tc.err)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"16MiB", 16 << 20, true},
		{"16 MiB", 16 << 20, true},
		{"16mib", 16 << 20, true},
		{"16M", 16 << 20, true},
		{"4096", 4096, true},
		{"1GB", 1e9, true},
		{"2kB", 2000, true},
		{"1TiB", 1 << 40, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"1.5MiB", 0, false},
		{"-1MiB", 0, false},
		{"16XB", 0, false},
		{"99999999999TiB", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"5%", 5, true},
		{"2.5%", 2.5, true},
		{" 10 % ", 10, true},
		{"0%", 0, true},
		{"5", 0, false},
		{"%", 0, false},
		{"five%", 0, false},
		{"NaN%", 0, false},
	}
	for _, tc := range tests {
		got, err := ParsePercent(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"0", "", true},
		{"0s", "", true},
		{"0d", "", true},
		{"0y0m", "", true},
		{"2y5m7d3h", "2y5m7d3h", true},
		{"14D", "14d", true},
		{"2w", "2w", true},
		{"5m", "5m", true}, // restic: months
		{"36h", "36h", true},
		{"1d1h30m", "1d1h30m", true},
		{"5m30s", "5m30s", true}, // Go: minutes
		{"90s", "90s", true},
		{"1.5h", "1.5h", true},
		{"2d2d", "", false},
		{"2 weeks", "", false},
		{"-3h", "", false},
		{"3x", "", false},
		{"2000000d", "", false},
	}
	for _, tc := range tests {
		got, err := normaliseWithin(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("normaliseWithin(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestRepositoryURL(t *testing.T) {
	dir := "/etc/mbackup"
	tests := []struct {
		in   string
		want RepositoryURL
		str  string
		err  string
	}{
		{"/var/lib/mbackup/repo/", RepositoryURL{Kind: KindLocal, Path: "/var/lib/mbackup/repo"}, "/var/lib/mbackup/repo", ""},
		{"repo", RepositoryURL{Kind: KindLocal, Path: "/etc/mbackup/repo"}, "/etc/mbackup/repo", ""},
		{"./a:b", RepositoryURL{Kind: KindLocal, Path: "/etc/mbackup/a:b"}, "/etc/mbackup/a:b", ""},
		{"file:///srv/repo", RepositoryURL{Kind: KindLocal, Path: "/srv/repo"}, "/srv/repo", ""},
		{"file://localhost/srv/repo", RepositoryURL{Kind: KindLocal, Path: "/srv/repo"}, "/srv/repo", ""},
		{"s3:https://s3.example.ch/bucket", RepositoryURL{Kind: KindS3, Endpoint: "s3.example.ch", Secure: true, Bucket: "bucket"}, "s3:https://s3.example.ch/bucket", ""},
		{"s3:http://127.0.0.1:9000/b/p/q/", RepositoryURL{Kind: KindS3, Endpoint: "127.0.0.1:9000", Bucket: "b", Prefix: "p/q"}, "s3:http://127.0.0.1:9000/b/p/q", ""},
		{"s3:https://h", RepositoryURL{}, "", "names no bucket"},
		{"s3:ftp://h/b", RepositoryURL{}, "", "bad S3 URL"},
		{"s3:https://u:hunter2@h/b", RepositoryURL{}, "", "must not contain credentials"},
		{"s3:https://h/b?x=1", RepositoryURL{}, "", "must not have a query"},
		{"file://srv/repo", RepositoryURL{}, "", "bad file URL"},
		{"sftp:host:/repo", RepositoryURL{}, "", `unsupported repository URL scheme "sftp"`},
		{"", RepositoryURL{}, "", "is empty"},
	}
	for _, tc := range tests {
		got, fix, err := parseRepositoryURL(tc.in, dir)
		if tc.err == "" {
			if err != nil || got != tc.want || got.String() != tc.str {
				t.Errorf("parseRepositoryURL(%q) = %+v (%s), %v; want %+v", tc.in, got, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || fix == "" || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseRepositoryURL(%q) error = %v (fix %q), want %q", tc.in, err, fix, tc.err)
		}
	}
}

func TestParseDatabase(t *testing.T) {
	tests := []struct {
		in               string
		host, name, user string
		port             int
		conn, pw         string
		err              string
	}{
		{"postgres://backup@db.x:5432/moodle?sslmode=require", "db.x", "moodle", "backup", 5432, "postgres://backup@db.x:5432/moodle?sslmode=require", "", ""},
		{"postgresql://db.x/moodle", "db.x", "moodle", "", 5432, "postgresql://db.x/moodle", "", ""},
		{"postgres://u:p%40ss@db.x:6432/m", "db.x", "m", "u", 6432, "postgres://u@db.x:6432/m", "p@ss", ""},
		{"postgres:///m?host=/var/run/postgresql&user=postgres", "/var/run/postgresql", "m", "postgres", 5432, "postgres:///m?host=/var/run/postgresql&user=postgres", "", ""},
		{"postgres://h/ignored?dbname=real&port=5433&password=hunter2", "h", "real", "", 5433, "postgres://h/ignored?dbname=real&port=5433", "hunter2", ""},
		{"postgres://[::1]:5432/m", "::1", "m", "", 5432, "postgres://[::1]:5432/m", "", ""},
		{"mysql://u:hunter2@h/m", "", "", "", 0, "", "", "not a postgres:// URL"},
		{"postgres://u:hunter2@h", "", "", "", 0, "", "", "names no database"},
		{"postgres://u:hunter2@h:0/m", "", "", "", 0, "", "", "bad port"},
		{"postgres://u:hunter2@h:x/m", "", "", "", 0, "", "", "bad URL"},
		{"postgres://u:hunter2@h/a/b", "", "", "", 0, "", "", "names no database"},
		{"postgres://u:hunt/er2@h/m", "", "", "", 0, "", "", "bad URL"},
		{"postgres://u:hunter2#x@h/m", "", "", "", 0, "", "", "bad URL"},
	}
	for _, tc := range tests {
		db, err := parseDatabase(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "hunt") {
				t.Errorf("parseDatabase(%q) error = %v, want %q without the password", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || db.Host != tc.host || db.Name != tc.name || db.User != tc.user || db.Port != tc.port ||
			db.ConnString() != tc.conn || db.password.Value() != tc.pw {
			t.Errorf("parseDatabase(%q) = %+v (%s), %v", tc.in, db, db.ConnString(), err)
		}
	}
}

func TestDatabaseSameAs(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"postgres://u@db.x/m", "postgres://other@DB.X:5432/m?sslmode=require", true},
		{"postgres://localhost/m", "postgres://127.0.0.1/m", true},
		{"postgres:///m", "postgres://[::1]/m", true},
		{"postgres:///m?host=/tmp", "postgres://localhost:5432/m", true},
		{"postgres://db.x/m", "postgres://db.x:5433/m", false},
		{"postgres://db.x/m", "postgres://db.y/m", false},
		{"postgres://db.x/m", "postgres://db.x/m_staging", false},
	}
	for _, tc := range tests {
		a, errA := parseDatabase(tc.a)
		b, errB := parseDatabase(tc.b)
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if a.SameAs(b) != tc.same || b.SameAs(a) != tc.same {
			t.Errorf("SameAs(%q, %q) = %v, want %v", tc.a, tc.b, a.SameAs(b), tc.same)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"postgres://u:hunter2@h/m":        "postgres://u:xxxxx@h/m",
		"postgres://u:p@ss:w@h/m":         "postgres://u:xxxxx@h/m",
		"postgres://u@h/m":                "postgres://u@h/m",
		"postgres://u:pa/ss@h/m":          "postgres://u:xxxxx@h/m",
		"postgres://u:p?s#s@h/m":          "postgres://u:xxxxx@h/m",
		"postgres://h/m?password=hunter2": "postgres://h/m?password=xxxxx",
		"no scheme":                       "no scheme",
	}
	for in, want := range tests {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"client-x", "a", "0abc", strings.Repeat("a", 33)} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "Client", "client_x", "client.x", "x/y", strings.Repeat("a", 34)} {
		if err := checkName(bad); err == nil {
			t.Errorf("checkName(%q) accepted", bad)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "mbackup.yaml", Line: 14, Key: "environments.client-x.schedule", Msg: "bad", Fix: "fix it"},
			"mbackup.yaml:14: environments.client-x.schedule: bad (fix: fix it)"},
		{Error{File: "mbackup.yaml", Key: "repository", Msg: "missing"}, "mbackup.yaml: repository: missing"},
		{Error{Msg: "no configuration file found", Fix: "pass --config"}, "no configuration file found (fix: pass --config)"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestExcludeMerge(t *testing.T) {
	def := layer{excludeAdd: []string{"filter/tex"}}
	tests := []struct {
		name     string
		def, env layer
		want     []string
	}{
		{"built-in", layer{}, layer{}, DefaultExclude()},
		{"defaults add", def, layer{}, append(DefaultExclude(), "filter/tex")},
		{"env add", def, layer{excludeAdd: []string{"muc", "cache"}}, append(DefaultExclude(), "filter/tex", "muc")},
		{"env replaces", def, layer{exclude: []string{"temp"}, hasExclude: true}, []string{"temp"}},
		{"env empties", def, layer{exclude: []string{}, hasExclude: true}, []string{}},
		{"defaults replace", layer{exclude: []string{"a"}, hasExclude: true}, layer{}, []string{"a"}},
	}
	for _, tc := range tests {
		got := resolveLayers(tc.def, tc.env).Exclude
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: Exclude = %v, want %v", tc.name, got, tc.want)
		}
	}
}

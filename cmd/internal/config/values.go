package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ParseSize parses a byte size: a whole number with an optional unit,
// B, KiB, MiB, GiB, TiB (powers of 1024; K, M, G, T mean the same) or
// kB, MB, GB, TB (powers of 1000). Units are case-insensitive.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("bad size %q: want a whole number with a unit such as MiB", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q: %w", s, errors.Unwrap(err))
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		mult = 1
	case "k", "kib":
		mult = 1 << 10
	case "m", "mib":
		mult = 1 << 20
	case "g", "gib":
		mult = 1 << 30
	case "t", "tib":
		mult = 1 << 40
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	default:
		return 0, fmt.Errorf("bad size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB)", s, strings.TrimSpace(t[i:]))
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return n * mult, nil
}

// ParsePercent parses "5%" or "2.5%" into 5 or 2.5. The "%" is required.
func ParsePercent(s string) (float64, error) {
	t := strings.TrimSpace(s)
	num, ok := strings.CutSuffix(t, "%")
	if !ok {
		return 0, fmt.Errorf("bad percentage %q: want a number followed by %%, e.g. 5%%", s)
	}
	p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
		return 0, fmt.Errorf("bad percentage %q: want a number followed by %%, e.g. 5%%", s)
	}
	return p, nil
}

// normaliseWithin validates a retention "within" value and returns it
// trimmed and lower-cased, or "" when it spans no time. The grammar is the
// one of package retention's ParseDuration, which the CLI maps it with:
// restic's calendar units y, m (months), w, d, each at most once, then
// optionally an hour-led Go duration (2y5m7d3h, 1d1h30m); or a Go duration
// alone (36h, 90s, 0s). It is repeated here so that a bad value is reported
// with its line.
func normaliseWithin(s string) (string, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	if in == "" || in == "0" {
		return "", nil
	}
	zero, err := checkWithin(in)
	if err != nil {
		return "", fmt.Errorf("bad duration %q: %v", s, err)
	}
	if zero {
		return "", nil
	}
	return in, nil
}

// checkWithin parses s (lower case, trimmed) and reports whether it is zero.
func checkWithin(s string) (zero bool, err error) {
	if strings.Contains(s, "-") {
		return false, errors.New("negative")
	}
	zero = true
	seen := map[byte]bool{}
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || !strings.ContainsRune("ymwd", rune(rest[i])) ||
			(i+1 < len(rest) && isLetter(rest[i+1])) {
			break // not a calendar unit: the Go-duration part, if any
		}
		if seen[rest[i]] {
			return false, fmt.Errorf("unit %c given twice", rest[i])
		}
		seen[rest[i]] = true
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 1_000_000 {
			return false, fmt.Errorf("%s%c is too large", rest[:i], rest[i])
		}
		zero = zero && n == 0
		rest = rest[i+1:]
	}
	if rest == "" {
		return zero, nil
	}
	if startsWithHours(rest) {
		if d, err := time.ParseDuration(rest); err == nil {
			return zero && d == 0, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d == 0, nil
	}
	return false, fmt.Errorf("cannot read %q; use calendar units like 2y5m7d3h, 2w or 14d (m = months), or a Go duration like 36h or 90s", rest)
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' }

// startsWithHours reports whether s begins with a number followed by h.
func startsWithHours(s string) bool {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	return i > 0 && i < len(s) && s[i] == 'h'
}

// parseRepositoryURL parses repository.url; relative local paths are
// resolved against dir.
func parseRepositoryURL(raw, dir string) (RepositoryURL, string, error) {
	const fix = "use a folder, file:///PATH or s3:https://HOST[:PORT]/BUCKET[/PREFIX]"
	if raw == "" {
		return RepositoryURL{}, fix, errors.New("is empty")
	}
	if rest, ok := strings.CutPrefix(raw, "s3:"); ok {
		u, err := url.Parse(rest)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return RepositoryURL{}, fix, fmt.Errorf("bad S3 URL %q: want s3:https://HOST[:PORT]/BUCKET[/PREFIX]", redactURL(raw))
		}
		if u.User != nil {
			return RepositoryURL{}, "put the keys in the environment (repository.s3.access_key_env, secret_key_env)",
				fmt.Errorf("S3 URL %q must not contain credentials", redactURL(raw))
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return RepositoryURL{}, fix, fmt.Errorf("S3 URL %q must not have a query or fragment", raw)
		}
		p := strings.Trim(path.Clean("/"+u.Path), "/")
		bucket, prefix, _ := strings.Cut(p, "/")
		if bucket == "" {
			return RepositoryURL{}, fix, fmt.Errorf("S3 URL %q names no bucket", raw)
		}
		return RepositoryURL{Kind: KindS3, Endpoint: u.Host, Secure: u.Scheme == "https", Bucket: bucket, Prefix: prefix}, "", nil
	}
	if strings.HasPrefix(raw, "file://") {
		u, err := url.Parse(raw)
		if err != nil || (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") {
			return RepositoryURL{}, "use file:///ABSOLUTE/PATH (three slashes)", fmt.Errorf("bad file URL %q", raw)
		}
		return RepositoryURL{Kind: KindLocal, Path: filepath.Clean(u.Path)}, "", nil
	}
	if i := strings.Index(raw, ":"); i > 1 && !strings.ContainsAny(raw[:i], `/\`) {
		return RepositoryURL{}, fix, fmt.Errorf("unsupported repository URL scheme %q", raw[:i])
	}
	return RepositoryURL{Kind: KindLocal, Path: absPath(raw, dir)}, "", nil
}

func absPath(p, dir string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}

// Database is a parsed PostgreSQL URL. Any password embedded in the URL is
// kept apart and never printed; see Environment.DatabasePassword.
type Database struct {
	Host string // "" means libpq's default (the local socket)
	Port int    // 5432 when not given
	Name string // database name
	User string // "" means libpq's default (the OS user)

	conn     string // the URL without its password
	password Secret
}

// ConnString returns the URL without any password: safe to print and to
// pass on a command line. Supply the password through PGPASSWORD or the
// driver's config.
func (d Database) ConnString() string { return d.conn }

// String returns ConnString.
func (d Database) String() string { return d.conn }

// MarshalText returns ConnString.
func (d Database) MarshalText() ([]byte, error) { return []byte(d.conn), nil }

// Address returns "HOST:PORT/NAME", with "localhost" for the local socket.
func (d Database) Address() string {
	h := d.Host
	if h == "" {
		h = "localhost"
	}
	return net.JoinHostPort(h, strconv.Itoa(d.Port)) + "/" + d.Name
}

// SameAs reports whether d and o name the same database: same server (local
// socket, localhost, 127.0.0.1 and ::1 count as one) and port, same name.
func (d Database) SameAs(o Database) bool {
	return normHost(d.Host) == normHost(o.Host) && d.Port == o.Port && d.Name == o.Name
}

func normHost(h string) string {
	h = strings.ToLower(strings.Trim(h, "[]"))
	switch h {
	case "", "localhost", "127.0.0.1", "::1":
		return "localhost"
	}
	if strings.HasPrefix(h, "/") { // a socket directory
		return "localhost"
	}
	return h
}

// parseDatabase parses a postgres:// or postgresql:// URL. Error texts
// never contain the password.
func parseDatabase(raw string) (Database, error) {
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return Database{}, fmt.Errorf("%q is not a postgres:// URL", redactURL(raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not even the parser's reason: it quotes parts of the URL, which
		// may be pieces of a password containing / ? or #.
		return Database{}, fmt.Errorf("bad URL %q: cannot parse it (percent-encode / ? # @ in the password)", redactURL(raw))
	}
	var db Database
	if u.User != nil {
		db.User = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			db.password = NewSecret(pw)
			u.User = url.User(db.User)
		}
	}
	db.Host = u.Hostname()
	port := u.Port()
	db.Name = strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	if q.Has("password") {
		db.password = NewSecret(q.Get("password"))
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	if v := q.Get("host"); v != "" {
		db.Host = v
	}
	if v := q.Get("port"); v != "" {
		port = v
	}
	if v := q.Get("dbname"); v != "" {
		db.Name = v
	}
	if v := q.Get("user"); v != "" {
		db.User = v
	}
	db.Port = 5432
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return Database{}, fmt.Errorf("bad port %q in %q", port, redactURL(raw))
		}
		db.Port = p
	}
	if db.Name == "" || strings.Contains(db.Name, "/") {
		return Database{}, fmt.Errorf("%q names no database", redactURL(raw))
	}
	db.conn = u.String()
	return db, nil
}

// redactURL replaces the password of a URL-like string with "xxxxx" without
// needing the string to parse. Everything between the first ':' after
// "://" and the last '@' counts as password, so a password holding an
// unencoded / ? # or @ is hidden too.
func redactURL(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return redactQuery(raw)
	}
	user := rest[:at]
	if c := strings.Index(user, ":"); c >= 0 {
		user = user[:c] + ":xxxxx"
	}
	return redactQuery(raw[:i+3] + user + rest[at:])
}

var passwordParamRE = regexp.MustCompile(`([?&]password=)[^&#]*`)

func redactQuery(s string) string { return passwordParamRE.ReplaceAllString(s, "${1}xxxxx") }

// validHostPort checks a listen address such as 127.0.0.1:9187 or :9187.
func validHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("bad address %q: want HOST:PORT", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port %q in %q", port, s)
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// checkName validates an environment name or Jelastic environment name.
func checkName(s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("bad name %q: use lowercase letters, digits and '-', starting with a letter or digit", s)
	}
	if len(s) > MaxEnvNameLen {
		return fmt.Errorf("name %q is %d characters long; Jelastic allows at most %d", s, len(s), MaxEnvNameLen)
	}
	return nil
}

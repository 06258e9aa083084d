package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB names a database and how to reach it.
type DB struct {
	// URL is a postgres:// connection URL; a password in it is honoured
	// but Password (from a file) takes precedence.
	URL      string
	Password string
}

// String returns the URL with any password removed, for messages.
func (d DB) String() string { return Redact(d.URL) }

// Redact removes the password from a connection URL.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable database URL>"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Name returns the database name from the URL.
func (d DB) Name() string {
	u, err := url.Parse(d.URL)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

// WithName returns the same server with another database name.
func (d DB) WithName(name string) DB {
	u, err := url.Parse(d.URL)
	if err != nil {
		return d
	}
	u.Path = "/" + name
	return DB{URL: u.String(), Password: d.Password}
}

// Connect opens a connection.
func (d DB) Connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(d.URL)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", d, scrub(err, d))
	}
	if d.Password != "" {
		cfg.Password = d.Password
	}
	cfg.RuntimeParams["application_name"] = "mbackup"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", d, d.connectError(err))
	}
	return conn, nil
}

// connectError turns pgx's account of a failed connection, which lists
// every attempt (with TLS, then without: "tls error: server refused TLS
// connection / ..."), into what matters: the server's answer, else the
// network's. The original stays in the chain.
func (d DB) connectError(err error) error {
	var pgErr *pgconn.PgError
	var opErr *net.OpError
	switch {
	case errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "28"):
		return &AuthError{Message: scrub(errors.New(pgErr.Message), d).Error(), Code: pgErr.Code}
	case errors.As(err, &pgErr):
		return connectFailure{msg: fmt.Sprintf("%s (SQLSTATE %s)", scrub(errors.New(pgErr.Message), d), pgErr.Code), err: err}
	case errors.As(err, &opErr):
		return connectFailure{msg: scrub(opErr, d).Error(), err: err}
	}
	return scrub(err, d)
}

// connectFailure is a failed connection told in one line.
type connectFailure struct {
	msg string
	err error
}

func (e connectFailure) Error() string { return e.msg }
func (e connectFailure) Unwrap() error { return e.err }

// Transient reports whether err says the server could not be reached or
// was going away (a restart, a shutdown, a dropped connection): the same
// statement may succeed once the server is back. A server's SQLSTATE
// decides when there is one: 57P01-57P03 (admin_shutdown,
// crash_shutdown, cannot_connect_now) and class 08 (connection
// exceptions) are transient.
func Transient(err error) bool {
	var pgErr *pgconn.PgError
	var netErr net.Error
	switch {
	case err == nil:
		return false
	case errors.As(err, &pgErr):
		return strings.HasPrefix(pgErr.Code, "57P") || strings.HasPrefix(pgErr.Code, "08")
	case errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	}
	return false
}

// AuthError is the server's refusal of a connection's credentials
// (SQLSTATE class 28: a wrong or missing password, no pg_hba.conf entry).
type AuthError struct {
	Message string // the server's, e.g. password authentication failed for user "moodle"
	Code    string // SQLSTATE, e.g. 28P01
}

func (e *AuthError) Error() string { return e.Message + " (SQLSTATE " + e.Code + ")" }

// scrub makes sure no error text carries the password.
func scrub(err error, d DB) error {
	msg := err.Error()
	clean := strings.ReplaceAll(msg, d.URL, Redact(d.URL))
	if d.Password != "" {
		clean = strings.ReplaceAll(clean, d.Password, "xxxxx")
	}
	if u, perr := url.Parse(d.URL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			clean = strings.ReplaceAll(clean, pw, "xxxxx")
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

// Cmd prepares a PostgreSQL client program (pg_dump, pg_restore, psql)
// connecting to d: the connection goes in --dbname without the password,
// which travels in PGPASSWORD, never on the command line (visible in ps).
func (d DB) Cmd(ctx context.Context, program string, args ...string) *exec.Cmd {
	u, err := url.Parse(d.URL)
	dbname := d.URL
	pw := d.Password
	if err == nil {
		if u.User != nil {
			if p, ok := u.User.Password(); ok && pw == "" {
				pw = p
			}
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		if q.Has("password") {
			if pw == "" {
				pw = q.Get("password")
			}
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		dbname = u.String()
	}
	cmd := exec.CommandContext(ctx, program, append([]string{"--dbname=" + dbname}, args...)...)
	cmd.Env = os.Environ()
	if pw != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+pw)
	}
	return cmd
}

// ToolVersion returns the version line of a client program, e.g.
// "pg_dump (PostgreSQL) 15.20".
func ToolVersion(ctx context.Context, program string) (string, error) {
	out, err := exec.CommandContext(ctx, program, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w (is the PostgreSQL client installed?)", program, err)
	}
	return strings.TrimSpace(string(out)), nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// Ident quotes an SQL identifier.
func Ident(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

// ValidName reports whether name is a plain database name we create
// ourselves (restores, staging): letters, digits, underscores.
func ValidName(name string) bool { return identRE.MatchString(name) && len(name) <= 63 }

// IsConnError reports whether err is a failure to reach the server (as
// opposed to an SQL error).
func IsConnError(err error) bool {
	var pgErr *pgconn.PgError
	return err != nil && !errors.As(err, &pgErr)
}

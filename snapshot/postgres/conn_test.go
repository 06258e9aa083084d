package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"no server", fmt.Errorf("connect to x: %w", connectFailure{msg: "connection refused", err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}), true},
		{"starting up", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{"shutting down", fmt.Errorf("drop: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}), true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"connection closed", fmt.Errorf("exec: %w", io.ErrUnexpectedEOF), true},
		{"wrong password", fmt.Errorf("connect to x: %w", &AuthError{Message: "password authentication failed", Code: "28P01"}), false},
		{"no such database", &pgconn.PgError{Code: "3D000"}, false},
		{"object in use", &pgconn.PgError{Code: "55006"}, false},
		{"other", errors.New("disk full"), false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// A failed connection says what went wrong in one line: the server's
// answer or the network's, not pgx's list of attempts (with TLS, then
// without).
func TestConnectErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	// The test server (as snapshottest.AdminURL, which imports us).
	admin := os.Getenv("MBACKUP_TEST_PG")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	noDB, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	noDB.Path = "/mbackup_no_such_db"
	for _, c := range []struct {
		name, url string
		want      []string
		transient bool
	}{
		{"no such database", noDB.String(), []string{`database "mbackup_no_such_db" does not exist (SQLSTATE 3D000)`}, false},
		{"nothing listening", "postgres://postgres@" + closed + "/x", []string{closed, "connection refused"}, true},
	} {
		_, err := DB{URL: c.url}.Connect(context.Background())
		if err == nil {
			t.Errorf("%s: connected", c.name)
			continue
		}
		msg := err.Error()
		for _, w := range append(c.want, "connect to postgres://") {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q lacks %q", c.name, msg, w)
			}
		}
		if strings.Contains(msg, "\n") || strings.Contains(msg, "tls error") || strings.Count(msg, "connection refused") > 1 {
			t.Errorf("%s: not one clear line: %q", c.name, msg)
		}
		if Transient(err) != c.transient {
			t.Errorf("%s: Transient = %v", c.name, !c.transient)
		}
	}
}

package pgtest_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mbackup/mbackup/snapshot/postgres/pgtest"
)

// The server must really check passwords, or the tests built on it prove
// nothing: the right one connects, a wrong one and none are refused with
// PostgreSQL's invalid_password (28P01).
func TestServerChecksPasswords(t *testing.T) {
	s := pgtest.Start(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.AdminURL())
	if err != nil {
		t.Fatalf("the right password: %v", err)
	}
	var method string
	if err := conn.QueryRow(ctx, "SHOW password_encryption").Scan(&method); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if method != "scram-sha-256" {
		t.Errorf("password_encryption %q", method)
	}

	wrong, _ := url.Parse(s.URL("postgres"))
	wrong.User = url.UserPassword(s.User, s.Password+"x")
	for name, u := range map[string]string{"a wrong password": wrong.String(), "no password": s.URL("postgres")} {
		cfg, err := pgx.ParseConfig(u)
		if err != nil {
			t.Fatal(err)
		}
		if name == "no password" {
			cfg.Password = "" // not even from PGPASSWORD or ~/.pgpass
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			conn.Close(ctx)
			t.Errorf("%s: connected", name)
			continue
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
			t.Errorf("%s: %v, want invalid_password (28P01)", name, err)
		}
	}
}

// A restart ends the sessions open at the time, and the server accepts
// new ones afterwards on the same address, with its data kept.
func TestRestart(t *testing.T) {
	s := pgtest.Start(t)
	ctx := context.Background()
	before, err := pgx.Connect(ctx, s.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close(ctx)
	if _, err := before.Exec(ctx, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := before.Ping(ctx); err == nil {
		t.Error("a session from before the restart still works")
	}
	after, err := pgx.Connect(ctx, s.AdminURL())
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	defer after.Close(ctx)
	var x int
	if err := after.QueryRow(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 42 {
		t.Errorf("data after the restart: %d, %v", x, err)
	}
}

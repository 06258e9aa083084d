package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"
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
		{"no server", fmt.Errorf("connect to x: %w", unavailable{&net.OpError{Op: "dial", Err: errors.New("connection refused")}}), true},
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

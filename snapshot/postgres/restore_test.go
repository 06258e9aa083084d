package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/postgres"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// failingReader yields data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// ToSQL feeds the archive to pg_restore through a pipe of its own: the
// script comes out whole, a failing input is named as the cause, and a bad
// archive is pg_restore's error.
func TestToSQL(t *testing.T) {
	// A table big enough to fill the pipe many times over.
	env := snapshottest.NewEnv(t, "client-tosql", moodlegen.Tiny())
	snapshottest.ExecSQL(t, env.DBURL, `CREATE TABLE mdl_bulk AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 100000) g`)
	archive, err := exec.Command("pg_dump", "--format=custom", "--compress=0", "--dbname="+env.DBURL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	inputErr := errors.New("pack 1234abcd cannot be read")
	tests := []struct {
		name    string
		in      io.Reader
		wantErr string // "" for success
	}{
		{"archive", bytes.NewReader(archive), ""},
		{"input fails half-way", &failingReader{data: archive[:len(archive)/2], err: inputErr}, inputErr.Error()},
		{"not an archive", strings.NewReader(strings.Repeat("not a dump\n", 10000)), "pg_restore into SQL script failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := postgres.ToSQL(context.Background(), "", tt.in, &out)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out.String(), "COPY public.mdl_bulk") || !strings.Contains(out.String(), "\n100000\t") {
					t.Errorf("script of %d bytes lacks the table's data", out.Len())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

package postgres_test

import (
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/postgres"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// awkwardTables adds tables whose rows are easy to miscount in a dump:
// values with newlines, backslashes and `\.`, no columns at all, no rows,
// partitions, odd names, a large object, and many rows.
const awkwardTables = `
CREATE TABLE mdl_awkward (id int, v text, b bytea);
INSERT INTO mdl_awkward VALUES (1, '', '\x0a0a'), (2, E'two\nlines', NULL),
  (3, E'back\\slash', '\x5c2e'), (4, '\.', '\x00'), (5, E'\\.\n', NULL), (6, E'\r\t', '\x0a');
CREATE TABLE mdl_nocolumns ();
INSERT INTO mdl_nocolumns SELECT FROM generate_series(1, 5);
CREATE TABLE mdl_norows (id int);
CREATE TABLE mdl_part (id int) PARTITION BY RANGE (id);
CREATE TABLE mdl_part_low PARTITION OF mdl_part FOR VALUES FROM (0) TO (1000);
CREATE TABLE mdl_part_high PARTITION OF mdl_part FOR VALUES FROM (1000) TO (100000);
INSERT INTO mdl_part SELECT g FROM generate_series(1, 4321) g;
CREATE SCHEMA "Other Schema";
CREATE TABLE "Other Schema"."we.ird ""name""" (x int);
INSERT INTO "Other Schema"."we.ird ""name""" SELECT g FROM generate_series(1, 7) g;
SELECT lo_from_bytea(0, '\x0a0a0a5c2e0a'::bytea);
CREATE TABLE mdl_bulk AS SELECT g AS id, md5(g::text) || E'\n' AS payload FROM generate_series(1, 60000) g;
`

// queriedCounts counts every table's rows with count(*), the way restores
// are verified.
func queriedCounts(t *testing.T, db *postgres.DB) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	counts, err := postgres.RowCounts(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// The installed pg_dump's archive is read as the scanner expects: every
// table with data has its exact row count (a partitioned table has no data
// of its own: its partitions do).
func TestArchiveScannerOnPgDump(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-scan", moodlegen.Tiny())
	snapshottest.ExecSQL(t, env.DBURL, awkwardTables)
	archive, err := exec.Command("pg_dump", "--format=custom", "--compress=0", "--dbname="+env.DBURL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	version, counts, err := postgres.ScanArchive(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	want := queriedCounts(t, env.DB())
	delete(want, "public.mdl_part")
	if !maps.Equal(counts, want) {
		t.Errorf("counts from the archive %v\nfrom the database %v", counts, want)
	}
	tool, err := postgres.ToolVersion(context.Background(), "pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	if "pg_dump (PostgreSQL) "+version != tool {
		t.Errorf("version %q from the archive, pg_dump --version says %q", version, tool)
	}
}

// Dump records the counts and version from the archive, and by querying
// when the archive is one the scanner cannot read (here compressed, as a
// pg_dump newer than the scanner would look).
func TestDumpRecordsRowCounts(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-dumpcounts", moodlegen.Tiny())
	snapshottest.ExecSQL(t, env.DBURL, awkwardTables)
	want := queriedCounts(t, env.DB())
	tool, err := postgres.ToolVersion(context.Background(), "pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	compressing := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(compressing, []byte("#!/bin/sh\nexec pg_dump \"$@\" --compress=6\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, pgDump string }{
		{"archive read", ""},
		{"archive not readable", compressing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var n int64
			info, err := env.DB().Dump(context.Background(), postgres.DumpOptions{PgDump: tt.pgDump}, func(r io.Reader) error {
				var err error
				n, err = io.Copy(io.Discard, r)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatal("empty dump")
			}
			if !maps.Equal(info.RowCounts, want) {
				t.Errorf("row counts %v\nwant %v", info.RowCounts, want)
			}
			if info.PgDumpVersion != tool {
				t.Errorf("pg_dump version %q, want %q", info.PgDumpVersion, tool)
			}
		})
	}
}

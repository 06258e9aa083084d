package postgres

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// testdata/small.dump is pg_dump 15's archive of this database:
//
//	CREATE TABLE mdl_text (id int, v text, b bytea);
//	INSERT INTO mdl_text VALUES (1, '', '\x0a0a'), (2, E'two\nlines', NULL),
//	  (3, E'back\\slash', '\x5c2e'), (4, '\.', '\x00'), (5, E'\\.', NULL),
//	  (6, E'tab\there\r', '\x0a');
//	CREATE TABLE mdl_nocolumns (); -- and three rows
//	CREATE TABLE mdl_empty (id int);
//	CREATE TABLE mdl_part (id int) PARTITION BY RANGE (id);
//	CREATE TABLE mdl_part_low PARTITION OF mdl_part FOR VALUES FROM (0) TO (10);
//	CREATE TABLE mdl_part_high PARTITION OF mdl_part FOR VALUES FROM (10) TO (100);
//	INSERT INTO mdl_part SELECT g FROM generate_series(1, 30) g;
//	CREATE SCHEMA "Other Schema";
//	CREATE TABLE "Other Schema"."we.ird ""name""" (x int); -- and 7 rows
//	SELECT lo_from_bytea(0, '\x0a0a0a5c2e0a'::bytea);
//	CREATE MATERIALIZED VIEW mdl_mv AS SELECT * FROM mdl_text;
var smallDumpCounts = map[string]int64{
	"public.mdl_text":            6,
	"public.mdl_nocolumns":       3,
	"public.mdl_empty":           0,
	"public.mdl_part_low":        9,
	"public.mdl_part_high":       21,
	`Other Schema.we.ird "name"`: 7,
}

const smallDumpVersion = "15.20 (Debian 15.20-0+deb12u1)"

func readSmallDump(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/small.dump")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scanIn feeds archive to a scanner in pieces of the sizes next returns.
func scanIn(archive []byte, next func() int) (string, map[string]int64, error) {
	s := newArchiveScanner()
	for len(archive) > 0 {
		n := min(max(next(), 1), len(archive))
		s.Write(archive[:n])
		archive = archive[n:]
	}
	return s.result()
}

// The scanner finds every table's rows however the archive is split
// between writes: the chunk lengths, the end-of-data line and the newline
// bytes of a large object must not be taken for rows.
func TestArchiveScannerOnTestdata(t *testing.T) {
	archive := readSmallDump(t)
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		next func() int
	}{
		{"whole", func() int { return len(archive) }},
		{"one byte at a time", func() int { return 1 }},
		{"random pieces", func() int { return rng.IntN(40) }},
		{"4 KiB pieces", func() int { return 4096 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			version, counts, err := scanIn(archive, tt.next)
			if err != nil {
				t.Fatal(err)
			}
			if version != smallDumpVersion {
				t.Errorf("version %q, want %q", version, smallDumpVersion)
			}
			if !maps.Equal(counts, smallDumpCounts) {
				t.Errorf("counts %v\nwant %v", counts, smallDumpCounts)
			}
		})
	}
}

// Whatever the scanner does not expect ends in an error from result, never
// in counts that might be wrong.
func TestArchiveScannerRefuses(t *testing.T) {
	archive := readSmallDump(t)
	edit := func(f func(b []byte) []byte) []byte {
		return f(bytes.Clone(archive))
	}
	tests := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"empty", nil, "ends in its table of contents"},
		{"not an archive", []byte(strings.Repeat("COPY public.mdl_user FROM stdin;\n", 300)), "not a pg_dump archive"},
		{"cut in the header", archive[:20], "ends in its table of contents"},
		{"cut in the table of contents", archive[:len(archive)/2], "ends in its table of contents"},
		{"cut in a data block", archive[:len(archive)-3], "ends inside a data block"},
		{"newer archive version", edit(func(b []byte) []byte { b[6] = 17; return b }), "archive version 1.17.0 not known"},
		{"compressed", edit(func(b []byte) []byte { b[12] = 6; return b }), "compressed"},
		{"not the custom format", edit(func(b []byte) []byte { b[10] = 3; return b }), "want custom"},
		{"unknown block", append(bytes.Clone(archive), 7), "unknown data block type 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, counts, err := scanIn(tt.archive, func() int { return 512 })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if counts != nil {
				t.Errorf("counts %v given with the error", counts)
			}
		})
	}
}

func FuzzArchiveScanner(f *testing.F) {
	archive := readSmallDump(f)
	f.Add(archive)
	f.Add(archive[:len(archive)/2])
	f.Add(archive[:200])
	f.Fuzz(func(t *testing.T, b []byte) {
		_, counts, err := scanIn(b, func() int { return 97 })
		if err != nil {
			return
		}
		for table, n := range counts {
			if n < 0 {
				t.Errorf("%s: %d rows", table, n)
			}
		}
	})
}

package moodlegen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// TreeDigest fingerprints every entry below dir, keyed by slash-separated
// relative path:
//
//	"dir 0755"
//	"file 0644 <sha256 hex>"
//	"symlink -> <target>"
//	"other <type>"  (sockets, devices, pipes)
//
// Modes are the Unix permission bits plus setuid, setgid and sticky, in
// octal. Mtimes and owners are left out. An exclude entry skips that
// relative path and everything below it ("cache", "temp/backup",
// "climaintenance.html").
func TreeDigest(dir string, exclude []string) (map[string]string, error) {
	// A symlinked root (Moodle resolves dataroot with realpath) is followed;
	// nothing below it is.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("digest tree: %w", err)
	}
	out := map[string]string{}
	var mu sync.Mutex
	set := func(k, v string) {
		mu.Lock()
		out[k] = v
		mu.Unlock()
	}
	g := new(errgroup.Group)
	g.SetLimit(runtime.GOMAXPROCS(0))
	walkErr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if excluded(rel, exclude) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := unixMode(info.Mode())
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			set(rel, "symlink -> "+target)
		case d.IsDir():
			set(rel, fmt.Sprintf("dir %04o", mode))
		case d.Type().IsRegular():
			g.Go(func() error {
				sum, err := sha256File(p)
				if err != nil {
					return err
				}
				set(rel, fmt.Sprintf("file %04o %s", mode, sum))
				return nil
			})
		default:
			set(rel, "other "+d.Type().String())
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("digest tree %s: %w", dir, err)
	}
	if walkErr != nil {
		return nil, fmt.Errorf("digest tree %s: %w", dir, walkErr)
	}
	return out, nil
}

func excluded(rel string, exclude []string) bool {
	for _, e := range exclude {
		e = strings.Trim(filepath.ToSlash(e), "/")
		if e != "" && (rel == e || strings.HasPrefix(rel, e+"/")) {
			return true
		}
	}
	return false
}

func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DiffTrees lists the differences between two TreeDigest results, one line
// per path ("only in a", "only in b" or "a: ... b: ..."), sorted by path.
// An empty result means the trees are equal.
func DiffTrees(a, b map[string]string) []string {
	var out []string
	for k, va := range a {
		vb, ok := b[k]
		switch {
		case !ok:
			out = append(out, k+": only in a ("+va+")")
		case va != vb:
			out = append(out, k+": a: "+va+"; b: "+vb)
		}
	}
	for k, vb := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k+": only in b ("+vb+")")
		}
	}
	slices.Sort(out)
	return out
}

// TableDigest fingerprints one table's rows.
type TableDigest struct {
	Rows int64
	// Hash is an order-independent hash of the rows' text form: the sum,
	// over rows, of md5(row::text) taken as two 64-bit halves. Physical row
	// order, which differs after a restore, does not change it; any changed,
	// added or removed row does.
	Hash string
}

// Digest fingerprints a database: its rows, sequences and schema.
type Digest struct {
	Tables    map[string]TableDigest // by table ("name" in public, else "schema.name")
	Sequences map[string]int64       // next value nextval() would return
	Schema    string                 // hash of columns, types, defaults, constraints and indexes
}

// DatabaseDigest fingerprints the database at dbURL so that a restored copy
// can be compared with the original. It reads every row once, without
// sorting or building large strings, so it works on the Bench preset's log
// table too.
func DatabaseDigest(ctx context.Context, dbURL string) (Digest, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return Digest{}, fmt.Errorf("connect to %s: %w", redactURL(dbURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tables, err := listTables(ctx, conn)
	if err != nil {
		return Digest{}, err
	}
	d := Digest{Tables: make(map[string]TableDigest, len(tables)), Sequences: map[string]int64{}}
	for _, t := range tables {
		var td TableDigest
		var lo, hi string
		err := conn.QueryRow(ctx, `SELECT count(*),
			coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text,
			coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text
			FROM (SELECT md5(t::text) AS h FROM `+t.ident()+` t) s`).Scan(&td.Rows, &lo, &hi)
		if err != nil {
			return Digest{}, fmt.Errorf("digest table %s: %w", t, err)
		}
		sum := sha256.Sum256([]byte(lo + ":" + hi))
		td.Hash = hex.EncodeToString(sum[:16])
		d.Tables[t.String()] = td
	}
	rows, err := conn.Query(ctx, `SELECT schemaname, sequencename, increment_by FROM pg_sequences ORDER BY 1, 2`)
	if err != nil {
		return Digest{}, fmt.Errorf("list sequences: %w", err)
	}
	type seq struct {
		name tableName
		inc  int64
	}
	seqs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (seq, error) {
		var s seq
		err := row.Scan(&s.name.schema, &s.name.name, &s.inc)
		return s, err
	})
	if err != nil {
		return Digest{}, fmt.Errorf("list sequences: %w", err)
	}
	for _, s := range seqs {
		// pg_sequences hides last_value until nextval() ran; the relation
		// itself tells last_value and is_called, which pg_dump restores.
		var last int64
		var called bool
		if err := conn.QueryRow(ctx, "SELECT last_value, is_called FROM "+s.name.ident()).Scan(&last, &called); err != nil {
			return Digest{}, fmt.Errorf("read sequence %s: %w", s.name, err)
		}
		if called {
			last += s.inc
		}
		d.Sequences[s.name.String()] = last
	}
	if d.Schema, err = schemaHash(ctx, conn); err != nil {
		return Digest{}, err
	}
	return d, nil
}

// schemaHash hashes the definitions a restore must reproduce. Constraint and
// index names are included: Moodle's upgrade code looks indexes up by name.
func schemaHash(ctx context.Context, conn *pgx.Conn) (string, error) {
	rows, err := conn.Query(ctx, `
		SELECT 'column ' || table_schema || '.' || table_name || '.' || column_name || ' ' ||
		       data_type || coalesce('(' || character_maximum_length || ')', '') || ' ' ||
		       is_nullable || ' ' || coalesce(column_default, '')
		FROM information_schema.columns
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
		UNION ALL
		SELECT 'index ' || schemaname || ' ' || indexdef FROM pg_indexes
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
		UNION ALL
		SELECT 'constraint ' || n.nspname || '.' || c.conrelid::regclass::text || ' ' || c.conname || ' ' ||
		       pg_get_constraintdef(c.oid)
		FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1`)
	if err != nil {
		return "", fmt.Errorf("read schema: %w", err)
	}
	h := sha256.New()
	var line string
	if _, err := pgx.ForEachRow(rows, []any{&line}, func() error {
		h.Write([]byte(line + "\n"))
		return nil
	}); err != nil {
		return "", fmt.Errorf("read schema: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Diff lists the differences between two digests, one line each, sorted.
// An empty result means the databases hold the same rows, sequences and
// schema.
func (d Digest) Diff(other Digest) []string {
	var out []string
	for t, a := range d.Tables {
		b, ok := other.Tables[t]
		switch {
		case !ok:
			out = append(out, "table "+t+": only in a")
		case a.Rows != b.Rows:
			out = append(out, fmt.Sprintf("table %s: %d rows vs %d", t, a.Rows, b.Rows))
		case a.Hash != b.Hash:
			out = append(out, fmt.Sprintf("table %s: same row count (%d), different rows", t, a.Rows))
		}
	}
	for t := range other.Tables {
		if _, ok := d.Tables[t]; !ok {
			out = append(out, "table "+t+": only in b")
		}
	}
	for s, a := range d.Sequences {
		b, ok := other.Sequences[s]
		switch {
		case !ok:
			out = append(out, "sequence "+s+": only in a")
		case a != b:
			out = append(out, fmt.Sprintf("sequence %s: next value %d vs %d", s, a, b))
		}
	}
	for s := range other.Sequences {
		if _, ok := d.Sequences[s]; !ok {
			out = append(out, "sequence "+s+": only in b")
		}
	}
	if d.Schema != other.Schema {
		out = append(out, "schema differs (columns, constraints or indexes)")
	}
	slices.Sort(out)
	return out
}

package postgres

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// DumpOptions tune a dump.
type DumpOptions struct {
	// PgDump is the pg_dump program (default "pg_dump" from PATH).
	PgDump string
	// SkipRowCounts leaves out the exact row count of every table, in
	// the dump's snapshot, that restores are verified against.
	SkipRowCounts bool
	// Prefix is the Moodle table prefix (default "mdl_").
	Prefix string
	// SnapshotTaken, if set, is called once the dump's snapshot is
	// exported: changes made afterwards are not in the dump.
	SnapshotTaken func()
}

// DumpInfo describes a finished dump.
type DumpInfo struct {
	Format        string           `json:"format"`
	PgDumpVersion string           `json:"pg_dump_version"`
	Server        ServerInfo       `json:"server"`
	Moodle        *MoodleInfo      `json:"moodle,omitempty"`
	RowCounts     map[string]int64 `json:"row_counts,omitempty"`
}

// DumpFormat is the pg_dump format mbackup stores.
const DumpFormat = "custom-uncompressed"

// Dump runs pg_dump on d and streams its output to consume, which must read
// it to the end. The dump runs in a snapshot exported by a repeatable-read
// transaction that also reads the server facts, so all of them describe
// the same instant. Row counts and pg_dump's version are read from the
// archive as it streams by (see archiveScanner); tables it holds no rows of
// are counted afterwards in the same snapshot. Any failure (pg_dump exiting
// non-zero, the connection dropping, consume failing) is returned; the
// caller must then commit nothing.
func (d DB) Dump(ctx context.Context, opts DumpOptions, consume func(io.Reader) error) (*DumpInfo, error) {
	prog := opts.PgDump
	if prog == "" {
		prog = "pg_dump"
	}
	conn, err := d.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("dump %s: begin: %w", d, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var snapshot string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		return nil, fmt.Errorf("dump %s: export snapshot: %w", d, err)
	}
	info := &DumpInfo{Format: DumpFormat}
	if info.Server, err = Info(ctx, tx); err != nil {
		return nil, fmt.Errorf("dump %s: %w", d, err)
	}
	if info.Moodle, err = Moodle(ctx, tx, opts.Prefix); err != nil {
		return nil, fmt.Errorf("dump %s: %w", d, err)
	}
	if opts.SnapshotTaken != nil {
		opts.SnapshotTaken()
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := d.Cmd(ctx, prog, "--format=custom", "--compress=0", "--snapshot="+snapshot, "--no-password")
	stdout, pw, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("dump %s: %w", d, err)
	}
	defer stdout.Close()
	cmd.Stdout = pw
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	err = cmd.Start()
	pw.Close() // pg_dump has its copy; its exit must end our reads
	if err != nil {
		return nil, fmt.Errorf("dump %s: start %s: %w", d, prog, err)
	}

	scanner := newArchiveScanner()
	consumeErr := consume(io.TeeReader(stdout, scanner))
	if consumeErr != nil {
		cancel() // stop pg_dump: nobody reads its output any more
		_, _ = io.Copy(io.Discard, stdout)
	}
	waitErr := cmd.Wait()
	switch {
	case parent.Err() != nil && (waitErr != nil || consumeErr != nil):
		// Our caller gave up and exec killed pg_dump: say so, rather
		// than reporting the kill as the dump's own failure.
		return nil, fmt.Errorf("dump %s: %w", d, context.Cause(parent))
	case waitErr != nil && consumeErr == nil:
		return nil, fmt.Errorf("pg_dump of %s failed (%v): %s", d, waitErr, stderr.summary())
	case consumeErr != nil:
		return nil, fmt.Errorf("dump %s: %w", d, consumeErr)
	}

	// An archive the scanner could not follow (a pg_dump newer than it)
	// costs a --version and a count(*) per table, nothing more.
	version, counted, scanErr := scanner.result()
	if scanErr == nil {
		info.PgDumpVersion = "pg_dump (PostgreSQL) " + version
	} else if info.PgDumpVersion, err = ToolVersion(ctx, prog); err != nil {
		return nil, err
	}
	if !opts.SkipRowCounts {
		if info.RowCounts, err = rowCounts(ctx, tx, counted); err != nil {
			return nil, fmt.Errorf("dump %s: %w", d, err)
		}
	}
	return info, nil
}

// tailBuffer keeps the last max bytes written to it: enough of a failing
// tool's stderr to say why, without unbounded memory.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

// summary returns the last meaningful stderr lines on one line.
func (t *tailBuffer) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	var keep []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		// Detail lines mostly repeat the command, but "detail: Error
		// message from server: ..." is the cause.
		if l != "" && !strings.HasPrefix(l, "pg_dump: detail:") || strings.Contains(strings.ToLower(l), "error") {
			keep = append(keep, l)
		}
	}
	if len(keep) > 3 {
		keep = keep[len(keep)-3:]
	}
	if len(keep) == 0 {
		return "no message"
	}
	return strings.Join(keep, " / ")
}

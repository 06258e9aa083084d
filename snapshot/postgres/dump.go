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
	// CountRows records exact row counts per table, in the dump's
	// snapshot, for verifying restores (default on; costs a scan).
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
// transaction that also reads the server facts and, once the dump is done,
// counts rows, so all of them describe the same instant. Any failure
// (pg_dump exiting non-zero, the connection dropping, consume failing) is
// returned; the caller must then commit nothing.
func (d DB) Dump(ctx context.Context, opts DumpOptions, consume func(io.Reader) error) (*DumpInfo, error) {
	prog := opts.PgDump
	if prog == "" {
		prog = "pg_dump"
	}
	// Debian's pg_dump is a Perl wrapper that takes a noticeable part of
	// a second to start: ask its version while the snapshot is set up.
	type versionResult struct {
		version string
		err     error
	}
	versionCh := make(chan versionResult, 1)
	go func() {
		v, err := ToolVersion(ctx, prog)
		versionCh <- versionResult{v, err}
	}()
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
	v := <-versionCh
	if v.err != nil {
		return nil, v.err
	}
	info.PgDumpVersion = v.version
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

	consumeErr := consume(stdout)
	if consumeErr != nil {
		cancel() // stop pg_dump: nobody reads its output any more
		_, _ = io.Copy(io.Discard, stdout)
	}
	waitErr := cmd.Wait()
	// Rows are counted after the dump, in the same snapshot (our
	// transaction still holds it): counting during the COPY would compete
	// with pg_dump for the server's CPU and disk.
	var countErr error
	if waitErr == nil && consumeErr == nil && !opts.SkipRowCounts {
		info.RowCounts, countErr = RowCounts(ctx, tx)
	}
	switch {
	case parent.Err() != nil && (waitErr != nil || consumeErr != nil):
		// Our caller gave up and exec killed pg_dump: say so, rather
		// than reporting the kill as the dump's own failure.
		return nil, fmt.Errorf("dump %s: %w", d, context.Cause(parent))
	case waitErr != nil && consumeErr == nil:
		return nil, fmt.Errorf("pg_dump of %s failed (%v): %s", d, waitErr, stderr.summary())
	case consumeErr != nil:
		return nil, fmt.Errorf("dump %s: %w", d, consumeErr)
	case countErr != nil:
		return nil, fmt.Errorf("dump %s: %w", d, countErr)
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

package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

// spoolThreshold is the dump size above which a parallel restore pays for
// writing the dump to a temporary file first (pg_restore cannot run jobs
// on a pipe).
const spoolThreshold = 64 << 20

type dbRestore struct {
	db    *postgres.DB
	plan  DBPlan
	facts postgres.Facts
	fetch int64
	spool bool
}

func planDB(ctx context.Context, t Target, parts *snapshot.Parts, opts Options) (*dbRestore, error) {
	name := t.DB.Name()
	if !postgres.ValidName(name) {
		return nil, fmt.Errorf("database name %q of %s: only letters, digits and underscores are supported for restores", name, t.Name)
	}
	facts, err := t.DB.Facts(ctx, name)
	if err != nil {
		return nil, err
	}
	user, _, err := t.DB.CurrentUser(ctx)
	if err != nil {
		return nil, err
	}
	ts := opts.Now().Format("20060102150405")
	r := &dbRestore{db: t.DB, facts: facts, plan: DBPlan{
		Target: name, Exists: facts.Exists, New: derivedName(name, "_restore_"+ts),
		DumpBytes: int64(parts.Dump.Size), Jobs: 1,
	}}
	if facts.Exists {
		r.plan.KeepAs = derivedName(name, "_before_restore_"+ts)
		// The new database and every object in it belong to the owner
		// of the database it replaces, so the site's role can use it.
		// Creating a database for another owner and pg_restore's SET ROLE
		// both need membership in that role (or a superuser).
		if facts.Owner != user {
			r.plan.Role = facts.Owner
		}
	}
	r.fetch = int64(parts.Dump.Size)
	if opts.Jobs > 1 && parts.Dump.Size > spoolThreshold {
		if free, err := freeSpace(opts.TempDir); err == nil && free > int64(parts.Dump.Size)*11/10 {
			r.spool = true
			r.plan.Jobs = opts.Jobs
		}
	}
	return r, nil
}

// load restores the dump into the new database, analyses it and checks the
// row counts. It returns the number of tables verified. On failure the new
// database is dropped.
func (r *dbRestore) load(ctx context.Context, repo *engine.Repository, parts *snapshot.Parts, sn *snapshot.Snapshot, opts Options) (n int, err error) {
	if err := r.dropLeftovers(ctx, opts); err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			if derr := r.dropPartial(ctx); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	// Not cancelled half-way: the server may finish a CREATE DATABASE
	// whose client gave up, after our DROP ran, and leave it behind.
	if err := r.db.Create(context.WithoutCancel(ctx), r.plan.New, r.facts); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	newDB := r.db.WithName(r.plan.New)
	rd := repo.NewContentReader(ctx, parts.Dump.Content, opts.Fetchers)
	defer rd.Close()
	ro := postgres.RestoreOptions{PgRestore: opts.PgRestore, Role: r.plan.Role, Jobs: r.plan.Jobs}
	if r.spool {
		f, err := os.CreateTemp(opts.TempDir, ".mbackup-dump-*.pgdump")
		if err != nil {
			return 0, err
		}
		defer os.Remove(f.Name())
		_, err = io.Copy(f, rd)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, fmt.Errorf("spool dump to %s: %w", f.Name(), err)
		}
		ro.File = f.Name()
	} else {
		ro.Input = &errReader{r: rd}
	}
	if err := newDB.Restore(ctx, ro); err != nil {
		// pg_restore only sees the end of its input when the repository
		// fails; the repository's error is the cause worth reporting.
		if er, ok := ro.Input.(*errReader); ok && er.err != nil {
			return 0, fmt.Errorf("read dump from the repository: %w", er.err)
		}
		return 0, err
	}
	if err := clearMaintenanceFlag(ctx, newDB); err != nil {
		return 0, err
	}
	if err := newDB.Analyze(ctx); err != nil {
		return 0, err
	}
	// A manifest without database statistics (another version, a damaged
	// snapshot) leaves nothing to compare: restore without the check.
	if m := sn.Manifest.Database; m != nil && m.RowCounts != nil {
		want := m.RowCounts
		conn, err := newDB.Connect(ctx)
		if err != nil {
			return 0, err
		}
		got, err := postgres.RowCounts(ctx, conn)
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return 0, err
		}
		if err := compareCounts(want, got); err != nil {
			return 0, err
		}
		n = len(want)
	}
	return n, nil
}

// clearMaintenanceFlag switches off Moodle's maintenance_enabled captured
// in the dump (a snapshot taken in maintenance mode restores into it). Only
// a row that is on is touched, so an unchanged database dumps identically.
func clearMaintenanceFlag(ctx context.Context, db postgres.DB) error {
	conn, err := db.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('mdl_config') IS NOT NULL").Scan(&exists); err != nil || !exists {
		return err
	}
	_, err = conn.Exec(ctx, "UPDATE mdl_config SET value = '0' WHERE name = 'maintenance_enabled' AND value <> '0'")
	if err != nil {
		return fmt.Errorf("switch off maintenance_enabled: %w", err)
	}
	return nil
}

func (r *dbRestore) swap(ctx context.Context) error {
	return r.db.Swap(ctx, r.plan.Target, r.plan.New, r.plan.KeepAs)
}

// dropPartialWait is how long dropPartial waits for a server that went
// away: a restart takes seconds; Jelastic restarts containers when their
// limits change.
const dropPartialWait = time.Minute

// dropPartial drops the database of a failed load. The load may have
// failed because the server restarted, so a server not answering is
// tried again for a while (unless ctx was cancelled) rather than leaving
// the partial copy to the next restore.
func (r *dbRestore) dropPartial(ctx context.Context) error {
	deadline := time.Now().Add(dropPartialWait)
	wait := 200 * time.Millisecond
	for {
		err := r.db.Drop(context.WithoutCancel(ctx), r.plan.New)
		if err == nil {
			return nil
		}
		if !postgres.Transient(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("drop the partial database %s (the next restore drops it): %w", r.plan.New, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// dropLeftovers removes databases left by restores of the same target that
// were killed before they could clean up (<name>_restore_<timestamp>):
// they never held production data, only a partial copy of a snapshot. No
// other restore of the target runs (InPlace refuses to run concurrently),
// so even one with the name this restore is about to use is a leftover.
func (r *dbRestore) dropLeftovers(ctx context.Context, opts Options) error {
	names, err := r.db.DatabasesLike(ctx, r.plan.Target+"_restore_")
	if err != nil {
		return err
	}
	for _, name := range names {
		suffix := strings.TrimPrefix(name, r.plan.Target+"_restore_")
		if len(suffix) != len("20060102150405") || strings.Trim(suffix, "0123456789") != "" {
			continue
		}
		opts.Log.Warn("dropping database left by an interrupted restore", "database", name)
		if err := r.db.Drop(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// errReader remembers the first error of the reader it wraps.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

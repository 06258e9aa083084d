package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/archiver"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/restorer"
	"github.com/mbackup/mbackup/engine/tree"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

// DefaultExclude returns the contract's default list of regenerable
// moodledata folders and files (moodle-ops §1.2). trashdir is kept on
// purpose.
func DefaultExclude() []string {
	return []string{"cache", "localcache", "temp", "sessions", "lock", "climaintenance.html"}
}

// alwaysExclude is never worth storing whatever the configuration: files
// Moodle is writing right now (content goes to a .tmp name, is verified,
// then renamed), and files an interrupted restore staged (the next restore
// removes them).
func alwaysExclude() []string {
	return []string{"filedir/**/*.tmp", "**/.*" + restorerTmpMarker + "*"}
}

// restorerTmpMarker is restorer's marker for staged files.
const restorerTmpMarker = restorer.TempMarker

// Source is one environment to back up.
type Source struct {
	Env string
	// DB is the database; nil backs up files only.
	DB *postgres.DB
	// Moodledata is the moodledata folder; "" backs up the database only.
	Moodledata string
	// ConfigPHP is the site's config.php, optional.
	ConfigPHP string
	// Exclude lists moodledata paths to leave out (see archiver.Matcher);
	// nil means DefaultExclude().
	Exclude []string
	Tags    []string
}

// Options tune a backup.
type Options struct {
	// Time is recorded as the snapshot's time (default: when it started).
	Time time.Time
	// PgDump is the pg_dump program (default from PATH).
	PgDump string
	// SkipRowCounts skips counting rows per table.
	SkipRowCounts bool
	// Prefix is the Moodle table prefix (default mdl_).
	Prefix string
	// Progress receives running totals; Estimate is the previous
	// snapshot's size, 0 for the first one.
	Progress func(p Progress)
	// Warn receives problems that do not fail the backup.
	Warn func(msg string)
	// Version is recorded in the manifest.
	Version string
}

// Progress reports a running backup.
type Progress struct {
	Env      string
	Phase    string // "database" or "files" (they overlap), then "commit"
	Bytes    int64  // processed so far, both phases
	Estimate int64
}

// Result is a finished backup.
type Result struct {
	Snapshot *Snapshot
	Duration time.Duration
}

// Backup snapshots one environment: dump first, files second, then the
// commit. If anything fails, nothing is committed and the error says which
// part failed.
func Backup(ctx context.Context, repo *engine.Repository, src Source, opts Options) (*Result, error) {
	return BackupTo(ctx, func(context.Context) (*engine.Repository, error) { return repo, nil }, src, opts)
}

// BackupTo is Backup into the repository that open returns. The database
// side starts first (its snapshot exported, pg_dump started, its output
// waiting in the pipe), so that a command that has yet to open the
// repository, which derives its key at a deliberate cost of a fifth of a
// second, overlaps the two. An error from open is returned as it is, and
// nothing has been written then.
func BackupTo(ctx context.Context, open func(context.Context) (*engine.Repository, error), src Source, opts Options) (*Result, error) {
	start := time.Now()
	if src.DB == nil && src.Moodledata == "" {
		return nil, fmt.Errorf("backup %s: nothing to back up (no database, no moodledata)", src.Env)
	}
	b := &backup{src: src, opts: opts, ready: make(chan struct{}),
		m: Manifest{Env: src.Env, Started: start.UTC(), MbackupVersion: opts.Version}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type sourcesResult struct {
		nodes []*tree.Node
		err   error
	}
	done := make(chan sourcesResult, 1)
	go func() {
		nodes, err := b.sources(ctx)
		done <- sourcesResult{nodes, err}
	}()
	abort := func(err error) (*Result, error) {
		cancel()
		<-done
		return nil, err
	}

	repo, err := open(ctx)
	if err != nil {
		return abort(err)
	}
	sess, err := repo.StartSession(ctx, "backup", src.Env)
	if err != nil {
		return abort(fmt.Errorf("backup %s: %w", src.Env, err))
	}
	defer sess.Close(context.WithoutCancel(ctx))
	parent := b.prepare(ctx, repo)
	close(b.ready)
	res := <-done
	if res.err != nil {
		return nil, res.err
	}

	root := &tree.Tree{Nodes: res.nodes}
	if src.ConfigPHP != "" {
		node, err := b.saveConfigPHP(ctx)
		if err != nil {
			return nil, fmt.Errorf("backup %s: config.php: %w", src.Env, err)
		}
		root.Nodes = append(root.Nodes, node)
	}
	root.Sort()
	b.report("commit")
	saved, err := repo.SaveTree(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", src.Env, err)
	}
	b.m.AddedBytes += int64(saved.Stored)
	if b.m.Database != nil {
		b.m.AddedBytes += b.m.Database.AddedBytes
	}
	if b.m.Files != nil {
		b.m.AddedBytes += b.m.Files.AddedBytes
	}
	b.m.Finished = time.Now().UTC()

	t := opts.Time
	if t.IsZero() {
		t = start
	}
	host, _ := os.Hostname()
	sn := &engine.Snapshot{Time: t, Source: src.Env, Hostname: host, Tags: src.Tags, Tree: saved.ID}
	if parent != nil {
		pid := parent.ID()
		sn.Parent = &pid
	}
	if sn.Meta, err = json.Marshal(b.m); err != nil {
		return nil, err
	}
	if _, err := sess.Commit(ctx, sn); err != nil {
		return nil, fmt.Errorf("backup %s: %w", src.Env, err)
	}
	return &Result{Snapshot: &Snapshot{Snapshot: sn, Manifest: b.m}, Duration: time.Since(start)}, nil
}

type backup struct {
	src       Source
	opts      Options
	m         Manifest
	dbBytes   atomic.Int64
	fileBytes atomic.Int64

	// ready is closed once repo, parentFiles and estimate are set; the
	// database side runs ahead of it until it has data to save.
	ready       chan struct{}
	repo        *engine.Repository
	parentFiles *blob.ID // moodledata of the previous snapshot, if readable

	mu       sync.Mutex // guards m.Warnings, estimate and Progress calls
	estimate int64
}

// prepare finds the previous snapshot of the environment: its moodledata
// tree spares reading unchanged files, its size is the progress estimate.
func (b *backup) prepare(ctx context.Context, repo *engine.Repository) *Snapshot {
	b.repo = repo
	parent, err := Latest(ctx, repo, b.src.Env)
	if err != nil {
		b.warn(fmt.Sprintf("previous snapshots unreadable, reading every file: %v", err))
	}
	if parent == nil {
		return nil
	}
	pm := parent.Manifest
	b.mu.Lock()
	if pm.Database != nil {
		b.estimate += pm.Database.DumpBytes
	}
	if pm.Files != nil {
		b.estimate += pm.Files.Bytes
	}
	b.mu.Unlock()
	if parts, err := parent.Parts(ctx, repo); err == nil {
		b.parentFiles = parts.Moodledata
	} else {
		b.warn(fmt.Sprintf("previous snapshot %s unreadable, reading every file: %v", parent.ID().Short(), err))
	}
	return parent
}

// waitReady waits until the repository is open and the previous snapshot
// read.
func (b *backup) waitReady(ctx context.Context) error {
	select {
	case <-b.ready:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (b *backup) warn(msg string) {
	b.mu.Lock()
	b.m.Warnings++
	b.mu.Unlock()
	if b.opts.Warn != nil {
		b.opts.Warn(msg)
	}
}

// report passes running totals to the Progress callback; phase is the
// part reporting ("database" and "files" run at the same time).
func (b *backup) report(phase string) {
	if b.opts.Progress == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opts.Progress(Progress{Env: b.src.Env, Phase: phase, Bytes: b.dbBytes.Load() + b.fileBytes.Load(), Estimate: b.estimate})
}

// sources backs up the database and moodledata. The files are copied while
// the dump runs, but only once the dump's snapshot is taken: the
// consistency rule (package documentation) needs every file the dump
// references to exist when the copy starts, which holds from that instant
// on. Overlapping them keeps both cores busy while pg_dump is the
// bottleneck.
func (b *backup) sources(ctx context.Context) ([]*tree.Node, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg              sync.WaitGroup
		dbNode, fsNode  *tree.Node
		dbErr, fsErr    error
		snapshotTaken   = make(chan struct{})
		closeSnapshotCh sync.Once
	)
	started := func() { closeSnapshotCh.Do(func() { close(snapshotTaken) }) }
	if b.src.DB != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer started() // on failure too, so the files side does not wait forever
			dbNode, dbErr = b.dumpDatabase(ctx, started)
			if dbErr != nil {
				cancel()
			}
		}()
	} else {
		started()
	}
	if b.src.Moodledata != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-snapshotTaken
			if ctx.Err() != nil || b.waitReady(ctx) != nil {
				return
			}
			fsNode, fsErr = b.copyFiles(ctx, b.parentFiles)
			if fsErr != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// When one side fails the other is cancelled; report the cause.
	if errors.Is(dbErr, context.Canceled) && fsErr != nil && !errors.Is(fsErr, context.Canceled) {
		dbErr = nil
	}
	switch {
	case dbErr != nil:
		return nil, fmt.Errorf("backup %s: database: %w", b.src.Env, dbErr)
	case fsErr != nil:
		return nil, fmt.Errorf("backup %s: moodledata: %w", b.src.Env, fsErr)
	case b.src.Moodledata != "" && fsNode == nil:
		return nil, fmt.Errorf("backup %s: moodledata: %w", b.src.Env, context.Cause(ctx))
	}
	var nodes []*tree.Node
	for _, n := range []*tree.Node{dbNode, fsNode} {
		if n != nil {
			nodes = append(nodes, n)
		}
	}
	return nodes, nil
}

func (b *backup) dumpDatabase(ctx context.Context, snapshotTaken func()) (*tree.Node, error) {
	b.report("database")
	start := time.Now()
	var (
		ids []blob.ID
		st  engine.StreamStats
	)
	info, err := b.src.DB.Dump(ctx, postgres.DumpOptions{PgDump: b.opts.PgDump, SkipRowCounts: b.opts.SkipRowCounts, Prefix: b.opts.Prefix, SnapshotTaken: snapshotTaken},
		func(rd io.Reader) error {
			if err := b.waitReady(ctx); err != nil {
				return err
			}
			var err error
			ids, st, err = b.repo.SaveStreamWith(ctx, rd, engine.StreamOptions{Fast: true, Progress: func(n int64) {
				b.dbBytes.Store(n)
				b.report("database")
			}})
			return err
		})
	if err != nil {
		return nil, err
	}
	b.m.Database = &DBStats{DumpInfo: *info, DumpBytes: st.Bytes, AddedBytes: st.Stored, Duration: time.Since(start)}
	return &tree.Node{Name: DumpName, Type: tree.File, Mode: 0o600, ModTime: start.UTC(), Size: uint64(st.Bytes), Content: ids}, nil
}

func (b *backup) copyFiles(ctx context.Context, parent *blob.ID) (*tree.Node, error) {
	b.report("files")
	root := b.src.Moodledata
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(filepath.Join(root, "climaintenance.html")); err == nil {
		b.m.Maintenance = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	exclude := b.src.Exclude
	if exclude == nil {
		exclude = DefaultExclude()
	}
	id, st, err := archiver.Archive(ctx, b.repo, root, archiver.Options{
		Exclude: append(append([]string(nil), exclude...), alwaysExclude()...),
		Parent:  parent,
		Warn: func(rel string, err error) {
			b.warn(fmt.Sprintf("moodledata/%s: %v", rel, err))
		},
		Progress: func(s archiver.Stats) {
			b.fileBytes.Store(s.Bytes)
			b.report("files")
		},
	})
	if err != nil {
		return nil, err
	}
	b.m.Files = &FileStats{
		Root: root, Exclude: exclude, Files: st.Files, Dirs: st.Dirs, Symlinks: st.Symlinks,
		Bytes: st.Bytes, ReadBytes: st.ReadBytes, Unchanged: st.Unchanged, AddedBytes: st.Stored,
		Warnings: st.Warnings, Duration: st.Duration,
	}
	n := &tree.Node{Name: MoodledataName, Type: tree.Dir, Mode: fi.Mode(), ModTime: fi.ModTime().UTC(), Subtree: &id}
	return n, nil
}

func (b *backup) saveConfigPHP(ctx context.Context) (*tree.Node, error) {
	f, err := os.Open(b.src.ConfigPHP)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	ids, st, err := b.repo.SaveStream(ctx, f, nil)
	if err != nil {
		return nil, err
	}
	b.m.AddedBytes += st.Stored
	size := st.Bytes
	b.m.ConfigPHP = &size
	return &tree.Node{Name: ConfigPHPName, Type: tree.File, Mode: fi.Mode(), ModTime: fi.ModTime().UTC(), Size: uint64(size), Content: ids}, nil
}

package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/restorer"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

// Target is where a snapshot goes.
type Target struct {
	// Name is the environment's name, for messages.
	Name string
	// DB is the database to replace; nil skips the database.
	DB *postgres.DB
	// Moodledata is the folder to restore into; "" skips files.
	Moodledata string
	// Exclude lists moodledata paths left alone (the environment's
	// backup excludes).
	Exclude []string
}

// Options tune a restore.
type Options struct {
	DBOnly, FilesOnly bool
	DryRun            bool
	// Jobs is the number of parallel pg_restore jobs for large dumps
	// (default: the number of CPUs).
	Jobs int
	// Fetchers is the number of repository reads in flight for files and
	// for the dump each (default 4): more hide the latency of remote
	// storage, fewer save memory (up to 8 MiB each).
	Fetchers int
	// TempDir holds the spooled dump of a parallel restore (default
	// os.TempDir()).
	TempDir string
	// PgRestore is the pg_restore program.
	PgRestore string
	// Now is the clock (tests fix it).
	Now func() time.Time
	// KeepMaintenance leaves maintenance mode on after a successful
	// restore, for a caller with more to do before the site may serve
	// (a staging refresh sanitizes the data first); the caller removes
	// climaintenance.html. A failed restore behaves as without it.
	KeepMaintenance bool
	// DropPrevious drops the replaced database after the swap instead of
	// keeping it as <name>_before_restore_<timestamp>: for copies rebuilt
	// from production anyway (staging), where the old copy is clutter.
	DropPrevious bool
	// Progress receives what the restore is doing.
	Progress func(Progress)
	Log      *slog.Logger
}

// Progress reports a running restore.
type Progress struct {
	Phase                 string // "database", "files", "commit"
	BytesDone, BytesTotal int64
}

// DBPlan says what happens to the database.
type DBPlan struct {
	Target    string `json:"target"`
	Exists    bool   `json:"exists"`
	New       string `json:"restored_into"`
	KeepAs    string `json:"previous_kept_as,omitempty"`
	DumpBytes int64  `json:"dump_bytes"`
	Jobs      int    `json:"jobs"`
	Role      string `json:"role,omitempty"`
	// PreviousDropped is set when Options.DropPrevious dropped KeepAs.
	PreviousDropped bool `json:"previous_dropped,omitempty"`
}

// Report describes a restore (planned or done).
type Report struct {
	Snapshot   string         `json:"snapshot"`
	Target     string         `json:"target"`
	DryRun     bool           `json:"dry_run"`
	Database   *DBPlan        `json:"database,omitempty"`
	Files      *restorer.Plan `json:"files,omitempty"`
	FetchBytes int64          `json:"fetch_bytes"`
	// Verification results.
	TablesVerified int           `json:"tables_verified"`
	FilesVerified  int           `json:"files_verified"`
	Maintenance    string        `json:"maintenance,omitempty"`
	Duration       time.Duration `json:"duration_ns"`
}

// maxDBName is PostgreSQL's identifier limit.
const maxDBName = 63

func derivedName(base, suffix string) string {
	if len(base)+len(suffix) > maxDBName {
		base = base[:maxDBName-len(suffix)]
	}
	return base + suffix
}

func (o *Options) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = runtime.GOMAXPROCS(0)
	}
	if o.Fetchers <= 0 {
		o.Fetchers = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
}

func (o *Options) progress(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

// excludes returns the paths a moodledata restore leaves alone: the
// environment's excludes plus the maintenance flag, which the restore
// manages itself.
func excludes(t Target) []string {
	ex := slices.Clone(t.Exclude)
	if !slices.Contains(ex, maintenanceFile) {
		ex = append(ex, maintenanceFile)
	}
	return ex
}

// InPlace restores sn into target (its own environment, or another one).
// See the package documentation for the steps and guarantees.
func InPlace(ctx context.Context, repo *engine.Repository, sn *snapshot.Snapshot, target Target, opts Options) (*Report, error) {
	opts.defaults()
	start := opts.Now()
	rep := &Report{Snapshot: sn.ID().String(), Target: target.Name, DryRun: opts.DryRun}
	sess, err := repo.StartSession(ctx, "restore", target.Name, sn.ID())
	if err != nil {
		return nil, err
	}
	defer sess.Close(context.WithoutCancel(ctx))
	if err := exclusive(ctx, repo, sess, target.Name); err != nil {
		return nil, err
	}
	parts, err := sn.Parts(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w (nothing was changed)", target.Name, err)
	}
	doDB := !opts.FilesOnly && target.DB != nil
	doFiles := !opts.DBOnly && target.Moodledata != ""
	if doDB && parts.Dump == nil {
		return nil, fmt.Errorf("snapshot %s has no database dump", sn.ID().Short())
	}
	if doFiles && parts.Moodledata == nil {
		return nil, fmt.Errorf("snapshot %s has no moodledata", sn.ID().Short())
	}
	if !doDB && !doFiles {
		return nil, errors.New("nothing to restore: the target has neither a database nor a moodledata folder for this choice")
	}

	var db *dbRestore
	if doDB {
		if db, err = planDB(ctx, target, parts, opts); err != nil {
			return nil, err
		}
		rep.Database = &db.plan
		rep.FetchBytes += db.fetch
	}
	if opts.DryRun {
		if doFiles {
			st, err := restorer.Prepare(ctx, repo, *parts.Moodledata, target.Moodledata, restorer.Options{Delete: true, Exclude: excludes(target), DryRun: true})
			if err != nil {
				return nil, err
			}
			rep.Files = &st.Plan
			rep.FetchBytes += st.FetchBytes
		}
		rep.Duration = opts.Now().Sub(start)
		return rep, nil
	}

	// 1. Maintenance mode for the whole restore.
	var maint *maintenance
	if target.Moodledata != "" {
		if maint, err = enableMaintenance(target.Moodledata); err != nil {
			return nil, err
		}
	}
	abort := func(err error) (*Report, error) {
		if maint != nil {
			if merr := maint.restore(); merr != nil {
				err = errors.Join(err, merr)
			}
		}
		return nil, err
	}

	// 2 and 3, at the same time: the database into a fresh database next
	// to production (pg_restore is its own process), moodledata staged and
	// verified. Either failing cancels the other; both are undone.
	var (
		staged       *restorer.Staged
		dbErr, fsErr error
		wg           sync.WaitGroup
	)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if db != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts.progress(Progress{Phase: "database", BytesTotal: db.plan.DumpBytes})
			rep.TablesVerified, dbErr = db.load(pctx, repo, parts, sn, opts)
			if dbErr != nil {
				cancel()
			}
		}()
	}
	if doFiles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts.progress(Progress{Phase: "files"})
			staged, fsErr = restorer.Prepare(pctx, repo, *parts.Moodledata, target.Moodledata, restorer.Options{
				Delete: true, Exclude: excludes(target), Verify: true, Workers: opts.Fetchers,
				Progress: func(p restorer.Progress) {
					opts.progress(Progress{Phase: "files", BytesDone: p.BytesDone, BytesTotal: p.BytesTotal})
				},
			})
			if fsErr != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	dropNew := func() error {
		if db == nil || dbErr != nil {
			return nil // load drops its database itself when it fails
		}
		return db.dropPartial(ctx)
	}
	// Report the cause, not the cancellation it caused on the other side.
	if errors.Is(dbErr, context.Canceled) && fsErr != nil && ctx.Err() == nil {
		dbErr = nil
	}
	if errors.Is(fsErr, context.Canceled) && dbErr != nil && ctx.Err() == nil {
		fsErr = nil
	}
	switch {
	case dbErr != nil:
		if staged != nil {
			staged.Abort()
		}
		return abort(fmt.Errorf("restore %s: database: %w (production database untouched)", target.Name, dbErr))
	case fsErr != nil:
		return abort(errors.Join(fmt.Errorf("restore %s: moodledata: %w (production untouched)", target.Name, fsErr), dropNew()))
	}
	if staged != nil {
		rep.Files = &staged.Plan
		rep.FetchBytes += staged.FetchBytes
		rep.FilesVerified = staged.Verified
	}

	// 4. The switch.
	opts.progress(Progress{Phase: "commit"})
	if db != nil {
		if err := db.swap(ctx); err != nil {
			if staged != nil {
				staged.Abort()
			}
			return abort(errors.Join(fmt.Errorf("restore %s: %w (production untouched)", target.Name, err), dropNew()))
		}
	}
	if staged != nil {
		if err := staged.Commit(); err != nil {
			return nil, fmt.Errorf("restore %s: database restored, but moodledata only partly: %w; maintenance mode stays on", target.Name, err)
		}
		if err := emptyCaches(target.Moodledata); err != nil {
			opts.Log.Warn("emptying caches failed", "env", target.Name, "err", err)
		}
	}
	if db != nil && opts.DropPrevious && db.plan.KeepAs != "" {
		// The restore itself succeeded; a database left behind is only
		// clutter, so failing to drop it is a warning.
		if err := db.db.Drop(context.WithoutCancel(ctx), db.plan.KeepAs); err != nil {
			opts.Log.Warn("dropping the replaced database failed", "env", target.Name, "database", db.plan.KeepAs, "err", err)
		} else {
			db.plan.PreviousDropped = true
		}
	}
	switch {
	case maint != nil && opts.KeepMaintenance:
		rep.Maintenance = "on"
	case maint != nil:
		if err := maint.off(); err != nil {
			return nil, fmt.Errorf("restore %s: done, but maintenance mode could not be switched off: %w", target.Name, err)
		}
		rep.Maintenance = "off"
	}
	rep.Duration = opts.Now().Sub(start)
	return rep, nil
}

// ErrConcurrentRestore says that another restore into the same target is
// running.
var ErrConcurrentRestore = errors.New("another restore into this environment is running")

// exclusive refuses to run two restores into one target at once: they
// would replace each other's database and files half-way.
func exclusive(ctx context.Context, repo *engine.Repository, sess *engine.Session, target string) error {
	locks, err := repo.Locks(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, l := range locks {
		if l.Kind == "restore" && l.Description == target && l.Name != sess.LockName() && !l.Stale(now) {
			return fmt.Errorf("restore %s: %w (on %s, pid %d, since %s)", target, ErrConcurrentRestore, l.Hostname, l.PID, l.Started.Format(time.RFC3339))
		}
	}
	return nil
}

// emptyCaches removes the content of cache and localcache, which may hold
// data of the state before the restore; Moodle rebuilds them.
func emptyCaches(moodledata string) error {
	var errs []error
	for _, dir := range []string{"cache", "localcache"} {
		entries, err := os.ReadDir(filepath.Join(moodledata, dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(moodledata, dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// freeSpace returns the bytes available to unprivileged users in dir.
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// compareCounts checks restored row counts against those recorded.
func compareCounts(want, got map[string]int64) error {
	var bad []string
	for t, n := range want {
		if g, ok := got[t]; !ok {
			bad = append(bad, fmt.Sprintf("%s missing", t))
		} else if g != n {
			bad = append(bad, fmt.Sprintf("%s has %d rows, snapshot had %d", t, g, n))
		}
	}
	for t := range got {
		if _, ok := want[t]; !ok {
			bad = append(bad, fmt.Sprintf("%s not in the snapshot", t))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
	}
	return fmt.Errorf("row counts differ from the snapshot: %s", strings.Join(bad, "; "))
}

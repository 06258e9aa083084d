package prune_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/archiver"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/fault"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/checker"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/internal/fstest"
	"github.com/mbackup/mbackup/engine/prune"
	"github.com/mbackup/mbackup/engine/restorer"
)

var opts = engine.Options{KDF: crypto.KDFParams{N: 1024, R: 8, P: 1}}

const pw = "pw"

func newRepo(t *testing.T, be backend.Backend) *engine.Repository {
	t.Helper()
	r, err := engine.Init(context.Background(), be, pw, engine.InitOptions{PackSize: 1 << 20}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func open(t *testing.T, be backend.Backend) *engine.Repository {
	t.Helper()
	r, err := engine.Open(context.Background(), be, pw, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func localBackend(t *testing.T) backend.Backend {
	be, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// backup archives dir and returns the snapshot ID.
func backup(t testing.TB, r *engine.Repository, dir, source string) (blob.ID, error) {
	ctx := context.Background()
	s, err := r.StartSession(ctx, "backup", source)
	if err != nil {
		return blob.ID{}, err
	}
	defer s.Close(ctx)
	tree, _, err := archiver.Archive(ctx, r, dir, archiver.Options{})
	if err != nil {
		return blob.ID{}, err
	}
	return s.Commit(ctx, &engine.Snapshot{Time: time.Now(), Source: source, Tree: tree})
}

func mustBackup(t testing.TB, r *engine.Repository, dir, source string) blob.ID {
	t.Helper()
	id, err := backup(t, r, dir, source)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustCheck(t *testing.T, r *engine.Repository) *checker.Result {
	t.Helper()
	res, err := checker.Check(context.Background(), r, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("check failed:\n%s", strings.Join(res.Errors, "\n"))
	}
	return res
}

// mustRestore restores snapshot id and compares with want.
func mustRestore(t *testing.T, r *engine.Repository, id blob.ID, want map[string]fstest.Entry) {
	t.Helper()
	if err := r.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := restoreAndCompare(r, id, want); err != nil {
		t.Fatal(err)
	}
}

// restoreAndCompare restores snapshot id into a temporary folder and
// compares it with want.
func restoreAndCompare(r *engine.Repository, id blob.ID, want map[string]fstest.Entry) error {
	ctx := context.Background()
	sn, err := r.LoadSnapshot(ctx, id)
	if err != nil {
		return err
	}
	dst, err := os.MkdirTemp("", "restore")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dst)
	dst = filepath.Join(dst, "r")
	if _, err := restorer.Restore(ctx, r, sn.Tree, dst, restorer.Options{Verify: true}); err != nil {
		return fmt.Errorf("restore %s: %w", id.Short(), err)
	}
	got, err := fstest.Snapshot(dst, nil)
	if err != nil {
		return err
	}
	if d := fstest.Diff(want, got); len(d) > 0 {
		return fmt.Errorf("snapshot %s restores differently:\n%s", id.Short(), strings.Join(d, "\n"))
	}
	return nil
}

func build(t testing.TB, seed uint64, files int) (string, map[string]fstest.Entry) {
	dir := t.(interface{ TempDir() string }).TempDir()
	if err := fstest.Build(dir, seed, files); err != nil {
		t.Fatal(err)
	}
	s, err := fstest.Snapshot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, s
}

func TestPruneFreesForgottenData(t *testing.T) {
	r := newRepo(t, localBackend(t))
	dirA, _ := build(t, 1, 60)
	dirB, wantB := build(t, 2, 60)
	a := mustBackup(t, r, dirA, "a")
	b := mustBackup(t, r, dirB, "b")
	if err := r.RemoveSnapshot(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	dry, err := prune.Run(context.Background(), r, prune.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.MarkedPacks == 0 || dry.DeletedPacks != 0 {
		t.Fatalf("dry run: %+v", dry)
	}
	st, err := prune.Run(context.Background(), r, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.DeletedPacks == 0 || st.FreedBytes == 0 || st.PendingTombstones != 0 {
		t.Errorf("prune deleted %d packs, freed %d bytes, %d pending", st.DeletedPacks, st.FreedBytes, st.PendingTombstones)
	}
	t.Logf("prune: %+v", st)
	res := mustCheck(t, r)
	if res.UnindexedPacks != 0 || res.Blobs != res.ReferencedBlobs {
		t.Errorf("after prune: %d unindexed packs, %d indexed vs %d referenced blobs", res.UnindexedPacks, res.Blobs, res.ReferencedBlobs)
	}
	mustRestore(t, r, b, wantB)
	st, err = prune.Run(context.Background(), r, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.MarkedPacks != 0 || st.DeletedPacks != 0 {
		t.Errorf("second prune still found work: %+v", st)
	}
}

func TestPruneRepacksPartlyUsedPacks(t *testing.T) {
	r := newRepo(t, localBackend(t))
	dir, _ := build(t, 3, 150)
	first := mustBackup(t, r, dir, "x")
	// Delete two thirds of the files: their blobs share packs with kept ones.
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if n%3 != 0 {
				os.Remove(p)
			}
			n++
		}
		return nil
	})
	want, _ := fstest.Snapshot(dir, nil)
	second := mustBackup(t, r, dir, "x")
	r.RemoveSnapshot(context.Background(), first)
	st, err := prune.Run(context.Background(), r, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Repacked == 0 || st.NewPacks == 0 {
		t.Errorf("nothing repacked: %+v", st)
	}
	mustCheck(t, r)
	mustRestore(t, r, second, want)
}

// A backup that deduplicated against data that prune then marks must not
// lose it: the writer recovers the marked pack when it commits.
func TestWriterRecoversMarkedPack(t *testing.T) {
	be := localBackend(t)
	r := newRepo(t, be)
	dir, want := build(t, 4, 40)
	old := mustBackup(t, r, dir, "x")
	r.RemoveSnapshot(context.Background(), old)

	// The writer is another process: its own repository handle. It starts
	// (and reads the index) before prune marks everything as unused.
	w := open(t, be)
	ctx := context.Background()
	sess, err := w.StartSession(ctx, "backup", "writer")
	if err != nil {
		t.Fatal(err)
	}
	st, err := prune.Run(ctx, open(t, be), prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.PendingTombstones != 1 || st.DeletedPacks != 0 {
		t.Fatalf("prune should mark and wait for the writer: %+v", st)
	}
	// The writer now backs up the same files: every blob is known.
	tree, ast, err := archiver.Archive(ctx, w, dir, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ast.NewBlobs > 1 {
		t.Fatalf("writer stored %d new blobs; the test needs it to deduplicate", ast.NewBlobs)
	}
	id, err := sess.Commit(ctx, &engine.Snapshot{Source: "x", Tree: tree, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	sess.Close(ctx)
	mustCheck(t, open(t, be))
	// The next prune sweeps, but keeps what the snapshot needs.
	st, err = prune.Run(ctx, open(t, be), prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.PendingTombstones != 0 {
		t.Errorf("the writer ended, yet the mark is still pending: %+v", st)
	}
	final := open(t, be)
	mustCheck(t, final)
	mustRestore(t, final, id, want)
}

// TestSnapshotCommittedDuringMark commits a snapshot that deduplicates
// against data prune is marking, then lets prune die at the worst moment:
// after it deleted the index files naming that data, before it wrote the
// complete tombstone, or earlier, at its provisional tombstone (before
// which no index file may supersede those naming the marked packs: a
// reader ignores superseded files). The snapshot must restore at once (a
// restore session re-indexes the marked packs it needs), and the next
// prune must keep its data and drop the dead prune's marks.
func TestSnapshotCommittedDuringMark(t *testing.T) {
	for _, c := range []struct {
		name   string
		shared bool
		skip   int // tombstone saves that succeed before prune dies
	}{
		{"writer is another process", false, 1},
		{"writer shares prune's handle", true, 1},
		// Dying at the provisional tombstone: nothing may supersede the
		// index files naming the marked packs before it exists.
		{"prune dies at its provisional tombstone", false, 0},
	} {
		shared := c.shared
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			fb := fault.New(localBackend(t), 1)
			r := newRepo(t, fb)
			dir, want := build(t, 6, 60)
			old := mustBackup(t, r, dir, "x")
			if err := r.RemoveSnapshot(ctx, old); err != nil {
				t.Fatal(err)
			}
			pr, w := open(t, fb), open(t, fb)
			if shared {
				w = pr
			}
			var committed blob.ID
			var werr error
			fb.Add(fault.Rule{Op: fault.Save, Type: backend.TombstoneFile, Skip: c.skip})
			_, err := prune.Run(ctx, pr, prune.Options{Progress: func(phase string) {
				if phase == "finding referenced data" {
					// Every pack is unreferenced now; this writer
					// deduplicates against all of them.
					committed, werr = backup(t, w, dir, "x")
				}
			}})
			if werr != nil {
				t.Fatal(werr)
			}
			if !errors.Is(err, fault.ErrInjected) {
				t.Fatalf("prune: want the injected fault, got %v", err)
			}
			fb.Clear()
			mustRestorePinned(t, w, committed, want)
			mustRestorePinned(t, open(t, fb), committed, want)

			st, err := prune.Run(ctx, open(t, fb), prune.Options{})
			if err != nil {
				t.Fatalf("next prune: %v", err)
			}
			if st.DeletedPacks != 0 {
				t.Errorf("the next prune deleted %d packs; all hold the snapshot's data", st.DeletedPacks)
			}
			final := open(t, fb)
			mustCheck(t, final)
			mustRestore(t, final, committed, want)
			ts, err := final.Tombstones(ctx)
			if err != nil || len(ts) != 0 {
				t.Errorf("tombstones left: %d (%v)", len(ts), err)
			}
		})
	}
}

// mustRestorePinned restores snapshot id as the restore command does:
// inside a session that pins it, without reloading anything first.
func mustRestorePinned(t *testing.T, r *engine.Repository, id blob.ID, want map[string]fstest.Entry) {
	t.Helper()
	if err := restorePinned(r, id, want); err != nil {
		t.Fatalf("right after the failed prune: %v", err)
	}
}

func restorePinned(r *engine.Repository, id blob.ID, want map[string]fstest.Entry) error {
	ctx := context.Background()
	sess, err := r.StartSession(ctx, "restore", "test", id)
	if err != nil {
		return err
	}
	defer sess.Close(ctx)
	return restoreAndCompare(r, id, want)
}

func TestConcurrentPruneRefused(t *testing.T) {
	be := localBackend(t)
	r := newRepo(t, be)
	s, err := r.StartSession(context.Background(), "prune", "other")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	time.Sleep(10 * time.Millisecond)
	_, err = prune.Run(context.Background(), open(t, be), prune.Options{})
	if !errors.Is(err, prune.ErrConcurrentPrune) {
		t.Fatalf("want ErrConcurrentPrune, got %v", err)
	}
}

// TestPruneCrashAtEachPhase fails prune at each step that writes or
// deletes; the repository must stay valid and the next prune must finish.
func TestPruneCrashAtEachPhase(t *testing.T) {
	phases := []struct {
		name string
		rule fault.Rule
	}{
		{"upload repacked pack", fault.Rule{Op: fault.Save, Type: backend.PackFile}},
		{"write index", fault.Rule{Op: fault.Save, Type: backend.IndexFile}},
		{"delete old index", fault.Rule{Op: fault.Remove, Type: backend.IndexFile, Skip: 1}},
		{"write provisional tombstone", fault.Rule{Op: fault.Save, Type: backend.TombstoneFile}},
		{"write tombstone", fault.Rule{Op: fault.Save, Type: backend.TombstoneFile, Skip: 1}},
		{"delete provisional tombstone", fault.Rule{Op: fault.Remove, Type: backend.TombstoneFile}},
		{"delete packs", fault.Rule{Op: fault.Remove, Type: backend.PackFile, Skip: 1}},
		{"delete tombstone", fault.Rule{Op: fault.Remove, Type: backend.TombstoneFile, Skip: 1}},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			fb := fault.New(localBackend(t), 1)
			r := newRepo(t, fb)
			dir, _ := build(t, 5, 150)
			first := mustBackup(t, r, dir, "x")
			n := 0
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if n%3 != 0 {
						os.Remove(p)
					}
					n++
				}
				return nil
			})
			want, _ := fstest.Snapshot(dir, nil)
			second := mustBackup(t, r, dir, "x")
			r.RemoveSnapshot(context.Background(), first)

			fb.Add(ph.rule)
			_, err := prune.Run(context.Background(), open(t, fb), prune.Options{})
			if !errors.Is(err, fault.ErrInjected) {
				t.Fatalf("prune: want the injected fault, got %v", err)
			}
			fb.Clear()
			mustCheck(t, open(t, fb))
			mustRestore(t, open(t, fb), second, want)

			st, err := prune.Run(context.Background(), open(t, fb), prune.Options{})
			if err != nil {
				t.Fatalf("second prune: %v", err)
			}
			res := mustCheck(t, open(t, fb))
			if res.UnindexedPacks != 0 || st.PendingTombstones != 0 {
				t.Errorf("second prune left %d unindexed packs and %d tombstones (%+v)", res.UnindexedPacks, st.PendingTombstones, st)
			}
			mustRestore(t, open(t, fb), second, want)
			// Nothing is left for a third prune.
			st, err = prune.Run(context.Background(), open(t, fb), prune.Options{})
			if err != nil || st.MarkedPacks != 0 || st.DeletedPacks != 0 {
				t.Errorf("third prune: %v %+v", err, st)
			}
		})
	}
}

// TestBackupsDuringPrune runs several writers (separate repository
// handles, like separate processes) backing up changing data while prune
// runs again and again, then checks every snapshot.
func TestBackupsDuringPrune(t *testing.T) {
	be := localBackend(t)
	newRepo(t, be)
	const writers = 3
	rounds := 25
	if testing.Short() {
		rounds = 6
	}
	var (
		mu       sync.Mutex
		expected = map[blob.ID]map[string]fstest.Entry{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := engine.Open(ctx, be, pw, opts)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			dir, err := os.MkdirTemp("", "writer")
			if err != nil {
				errs <- err
				return
			}
			defer os.RemoveAll(dir)
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			var last blob.ID
			for round := range rounds {
				// Change the data: new files, rewritten files, deletions;
				// writer 0 shares some content with writer 1.
				if err := churn(dir, rng, w, round); err != nil {
					errs <- err
					return
				}
				want, err := fstest.Snapshot(dir, nil)
				if err != nil {
					errs <- err
					return
				}
				id, err := backup(t, r, dir, fmt.Sprintf("w%d", w))
				if err != nil {
					errs <- fmt.Errorf("writer %d round %d: %w", w, round, err)
					return
				}
				// A restore right after the commit, while prune may be
				// between deleting index files and its recheck.
				if err := restorePinned(r, id, want); err != nil {
					errs <- fmt.Errorf("writer %d round %d: %w", w, round, err)
					return
				}
				mu.Lock()
				expected[id] = want
				mu.Unlock()
				// Forget the previous snapshot now and then.
				if round%2 == 1 && !last.IsNull() {
					if err := r.RemoveSnapshot(ctx, last); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					delete(expected, last)
					mu.Unlock()
				}
				last = id
			}
		}()
	}
	pruneDone := make(chan int)
	go func() {
		n := 0
		defer func() { pruneDone <- n }()
		for ctx.Err() == nil {
			r, err := engine.Open(ctx, be, pw, opts)
			if err != nil {
				if ctx.Err() == nil { // else the writers are done and the test stops the pruner
					errs <- err
				}
				return
			}
			_, err = prune.Run(ctx, r, prune.Options{})
			r.Close()
			if err != nil && ctx.Err() == nil && !errors.Is(err, prune.ErrConcurrentPrune) {
				errs <- fmt.Errorf("prune: %w", err)
				return
			}
			n++
		}
	}()
	wg.Wait()
	cancel()
	n := <-pruneDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d prunes ran during %d×%d backups", n, writers, rounds)
	// A final prune sweeps what the writers held back.
	r := open(t, be)
	if _, err := prune.Run(context.Background(), r, prune.Options{}); err != nil {
		t.Fatal(err)
	}
	r = open(t, be)
	mustCheck(t, r)
	for id, want := range expected {
		mustRestore(t, r, id, want)
	}
}

func churn(dir string, rng *rand.Rand, w, round int) error {
	for i := range 12 {
		size := rng.IntN(300 << 10)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		name := fmt.Sprintf("f%02d", rng.IntN(30))
		if i == 0 {
			// Shared content across writers and rounds.
			data = []byte(strings.Repeat(fmt.Sprintf("shared %d\n", round), 20000))
			name = "shared"
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	if round > 0 {
		os.Remove(filepath.Join(dir, fmt.Sprintf("f%02d", rng.IntN(30))))
	}
	return nil
}

// A late retry of an old upload can bring back an index file that prune
// replaced; it must not resurrect the packs prune deleted.
func TestSupersededIndexFileComingBack(t *testing.T) {
	be := localBackend(t)
	r := newRepo(t, be)
	dirA, _ := build(t, 7, 40)
	dirB, wantB := build(t, 8, 40)
	a := mustBackup(t, r, dirA, "a")
	b := mustBackup(t, r, dirB, "b")
	ctx := context.Background()
	old := map[string][]byte{}
	be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		data, err := backend.ReadAll(ctx, be, backend.Handle{Type: backend.IndexFile, Name: fi.Name})
		if err != nil {
			t.Fatal(err)
		}
		old[fi.Name] = data
		return nil
	})
	r.RemoveSnapshot(ctx, a)
	if _, err := prune.Run(ctx, open(t, be), prune.Options{}); err != nil {
		t.Fatal(err)
	}
	for name, data := range old {
		if err := backend.SaveBytes(ctx, be, backend.Handle{Type: backend.IndexFile, Name: name}, data); err != nil {
			t.Fatal(err)
		}
	}
	res := mustCheck(t, open(t, be))
	if res.UnindexedPacks != 0 || !strings.Contains(strings.Join(res.Notes, " "), "superseded") {
		t.Errorf("check after the old index came back: %+v", res)
	}
	mustRestore(t, open(t, be), b, wantB)
	if _, err := prune.Run(ctx, open(t, be), prune.Options{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		if _, ok := old[fi.Name]; ok {
			n++
		}
		return nil
	})
	if n != 0 {
		t.Errorf("%d superseded index files left after the next prune", n)
	}
}

// A lock file left behind by a session that ended (its removal failed) must
// not hold marks back for LockStale in the process that ran the session,
// as in `mbackup serve`, where every job shares one Repository; another
// process cannot tell it from a live writer and waits.
func TestLeftoverLockOfEndedSession(t *testing.T) {
	fb := fault.New(localBackend(t), 1)
	r := newRepo(t, fb)
	dir, _ := build(t, 5, 30)
	old := mustBackup(t, r, dir, "x")
	if err := r.RemoveSnapshot(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sess, err := r.StartSession(ctx, "backup", "writer")
	if err != nil {
		t.Fatal(err)
	}
	st, err := prune.Run(ctx, r, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.PendingTombstones != 1 || st.DeletedPacks != 0 {
		t.Fatalf("prune should mark and wait for the live writer: %+v", st)
	}
	fb.Add(fault.Rule{Op: fault.Remove, Type: backend.LockFile, Times: 1})
	if err := sess.Close(ctx); err == nil {
		t.Fatal("the injected fault did not fail the lock's removal")
	}
	fb.Clear()

	// Another process sees a fresh lock of a live PID: it must wait.
	st, err = prune.Run(ctx, open(t, fb), prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.PendingTombstones != 1 || st.DeletedPacks != 0 || st.RemovedLocks != 0 {
		t.Fatalf("another process must treat the leftover lock as live: %+v", st)
	}
	// A dry run in the session's own process changes nothing.
	if st, err = prune.Run(ctx, r, prune.Options{DryRun: true}); err != nil || st.RemovedLocks != 0 {
		t.Fatalf("dry run: %+v, %v", st, err)
	}
	if locks, _ := r.Locks(ctx); len(locks) != 1 || !locks[0].Ended || !locks[0].Stale(time.Now()) {
		t.Fatalf("locks after the dry run: %+v, want the leftover, ended and stale", locks)
	}
	// The session's own process knows it ended: sweep and remove it.
	st, err = prune.Run(ctx, r, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.PendingTombstones != 0 || st.DeletedPacks == 0 || st.RemovedLocks != 1 {
		t.Fatalf("the ended session's leftover lock held the sweep back: %+v", st)
	}
	if locks, err := r.Locks(ctx); err != nil || len(locks) != 0 {
		t.Fatalf("locks after prune: %+v, %v", locks, err)
	}
	mustCheck(t, open(t, fb))
}

// listHook calls fn once, at the first listing of packs after arm: before
// the listing or after it.
type listHook struct {
	backend.Backend
	mu     sync.Mutex
	fn     func()
	before bool
}

func (l *listHook) arm(fn func()) { l.mu.Lock(); l.fn = fn; l.mu.Unlock() }

func (l *listHook) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	var hook func()
	if t == backend.PackFile {
		l.mu.Lock()
		hook, l.fn = l.fn, nil
		l.mu.Unlock()
	}
	if hook != nil && l.before {
		hook()
	}
	err := l.Backend.List(ctx, t, fn)
	if hook != nil && !l.before {
		hook()
	}
	return err
}

// TestPackUploadedWhilePruneReadsIndex: with backups and prune on one
// Repository (mbackup serve), a backup's packs are uploaded while prune
// reads the index and lists storage. That is not damage, and the backup's
// data must survive this prune and the next.
func TestPackUploadedWhilePruneReadsIndex(t *testing.T) {
	for _, before := range []bool{false, true} {
		t.Run(map[bool]string{false: "after the listing", true: "before the listing"}[before], func(t *testing.T) {
			ctx := context.Background()
			hook := &listHook{Backend: localBackend(t), before: before}
			r := newRepo(t, hook)
			dir, _ := build(t, 7, 30)
			old := mustBackup(t, r, dir, "x")
			if err := r.RemoveSnapshot(ctx, old); err != nil {
				t.Fatal(err)
			}
			dir2, want := build(t, 8, 30)
			var committed blob.ID
			var werr error
			_, err := prune.Run(ctx, r, prune.Options{Progress: func(phase string) {
				if phase == "finding referenced data" {
					hook.arm(func() { committed, werr = backup(t, r, dir2, "y") })
				}
			}})
			if err != nil {
				t.Fatalf("prune: %v", err)
			}
			if werr != nil || committed.IsNull() {
				t.Fatalf("the backup during prune did not run: %v", werr)
			}
			mustRestorePinned(t, r, committed, want)
			if _, err := prune.Run(ctx, r, prune.Options{}); err != nil {
				t.Fatalf("next prune: %v", err)
			}
			final := open(t, hook)
			mustCheck(t, final)
			mustRestore(t, final, committed, want)
		})
	}
}

package prune

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/index"
	"github.com/mbackup/mbackup/engine/pack"
)

// Options tune a prune.
type Options struct {
	// MaxUnused is the unreferenced share of a pack, in percent, above
	// which it is repacked (default 10).
	MaxUnused float64
	// DryRun computes and reports without changing anything.
	DryRun bool
	// Wait is how long to wait for live writers before leaving the sweep
	// of this run's marks to the next prune.
	Wait time.Duration
	// Log receives progress and warnings.
	Log *slog.Logger
	// Progress receives one line per phase.
	Progress func(phase string)
}

// Stats reports a prune.
type Stats struct {
	Snapshots int
	// Packs found in storage, by what prune made of them.
	Packs, PacksUsed, PacksPartlyUsed, PacksUnused, PacksUnindexed int
	UsedBytes, UnusedBytes                                         int64
	// Repacking.
	Repacked, NewPacks int
	RepackedBytes      int64
	// Marking.
	MarkedPacks int
	MarkedBytes int64
	// Sweeping (this run's marks and earlier ones).
	DeletedPacks   int
	FreedBytes     int64
	DeletedObjects int // packs, index files and tombstones deleted
	Recovered      int // marked packs put back because a snapshot needed them
	// RemovedLocks counts lock files of sessions that ended or died.
	RemovedLocks int
	// Pending tombstones wait for the listed writer sessions.
	PendingTombstones int
	WaitingFor        []string
	Duration          time.Duration
}

// ErrConcurrentPrune says that another prune is running.
var ErrConcurrentPrune = errors.New("another prune is running")

type pruner struct {
	repo  *engine.Repository
	opts  Options
	st    Stats
	own   string // our lock's name
	sizes map[blob.ID]int64
}

// Run prunes repo. See the package documentation for the protocol.
func Run(ctx context.Context, repo *engine.Repository, opts Options) (*Stats, error) {
	start := time.Now()
	if opts.MaxUnused <= 0 {
		opts.MaxUnused = 10
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	p := &pruner{repo: repo, opts: opts}
	if !opts.DryRun {
		sess, err := repo.StartSession(ctx, "prune", "")
		if err != nil {
			return nil, err
		}
		defer sess.Close(context.WithoutCancel(ctx))
		p.own = sess.LockName()
		if err := p.exclusive(ctx, sess.Started()); err != nil {
			return nil, err
		}
	} else if err := repo.LoadIndex(ctx); err != nil {
		return nil, err
	}
	if err := p.sweepPending(ctx); err != nil {
		return nil, fmt.Errorf("prune: sweep: %w", err)
	}
	if err := p.mark(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if c, ok := backend.AsTempCleaner(repo.Backend()); ok && !opts.DryRun {
		// Temporary files of saves killed mid-way; an hour is far longer
		// than any save in progress takes.
		n, err := c.CleanTemp(time.Hour)
		if err != nil {
			opts.Log.Warn("prune: removing leftover temporary files failed", "err", err)
		}
		p.st.DeletedObjects += n
	}
	p.st.Duration = time.Since(start)
	return &p.st, nil
}

func (p *pruner) phase(s string) {
	p.opts.Log.Info("prune: " + s)
	if p.opts.Progress != nil {
		p.opts.Progress(s)
	}
}

// exclusive makes sure no other prune runs: of two live prune locks, the
// older one (then the smaller name) wins.
func (p *pruner) exclusive(ctx context.Context, started time.Time) error {
	for check := 0; check < 2; check++ {
		locks, err := p.repo.Locks(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, l := range locks {
			if l.Kind != "prune" || l.Name == p.own || l.Stale(now) {
				continue
			}
			if l.Started.Before(started) || l.Started.Equal(started) && l.Name < p.own {
				return fmt.Errorf("%w on %s (pid %d) since %s", ErrConcurrentPrune, l.Hostname, l.PID, l.Started.Format(time.RFC3339))
			}
		}
		// Let a prune that started at the same moment write its lock.
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// liveSessions returns the names of the live locks other than ours, and
// (unless this is a dry run) removes the stale ones: their sessions can no
// longer commit, and a lock file left behind would be listed by every
// later run.
func (p *pruner) liveSessions(ctx context.Context) (map[string]engine.Lock, error) {
	locks, err := p.repo.Locks(ctx)
	if err != nil {
		return nil, err
	}
	live := make(map[string]engine.Lock)
	now := time.Now()
	for _, l := range locks {
		switch {
		case l.Name == p.own:
		case !l.Stale(now):
			live[l.Name] = l
		case p.opts.DryRun:
		default:
			if err := p.repo.RemoveLock(ctx, l.Name); err != nil && !backend.IsNotExist(err) {
				p.opts.Log.Warn("prune: could not remove a stale lock", "lock", l.Name, "kind", l.Kind, "err", err)
				continue
			}
			p.st.RemovedLocks++
			p.opts.Log.Info("prune: removed a stale lock", "lock", l.Name, "kind", l.Kind, "host", l.Hostname, "pid", l.PID)
		}
	}
	return live, nil
}

// snapshotRoots lists the snapshots and then refreshes the index. The order
// matters: a writer writes its index files before its snapshot, so every
// snapshot listed has its data in an index file loaded afterwards.
func (p *pruner) snapshotRoots(ctx context.Context) ([]blob.ID, error) {
	sns, err := p.repo.Snapshots(ctx)
	if err != nil {
		// A damaged snapshot file could hide references: never delete on
		// an incomplete view.
		return nil, fmt.Errorf("%w (prune refuses to run on an incomplete list of snapshots; run mbackup check)", err)
	}
	p.st.Snapshots = len(sns)
	roots := make([]blob.ID, len(sns))
	for i, sn := range sns {
		roots[i] = sn.Tree
	}
	if err := p.repo.LoadIndex(ctx); err != nil {
		return nil, err
	}
	return roots, nil
}

// sweepPending sweeps the tombstones whose writers have all ended.
func (p *pruner) sweepPending(ctx context.Context) error {
	ts, err := p.repo.Tombstones(ctx)
	if err != nil || len(ts) == 0 {
		return err
	}
	live, err := p.liveSessions(ctx)
	if err != nil {
		return err
	}
	var ready []*engine.Tombstone
	waiting := map[string]bool{}
	for _, t := range ts {
		if t.Provisional {
			continue // left by a prune that died: mark judges its packs again
		}
		blocked := false
		for _, s := range t.Sessions {
			if l, ok := live[s]; ok {
				blocked = true
				waiting[fmt.Sprintf("%s %s on %s (pid %d)", l.Kind, l.Description, l.Hostname, l.PID)] = true
			}
		}
		if blocked {
			p.st.PendingTombstones++
		} else {
			ready = append(ready, t)
		}
	}
	for w := range waiting {
		p.st.WaitingFor = append(p.st.WaitingFor, w)
	}
	sort.Strings(p.st.WaitingFor)
	if len(ready) == 0 || p.opts.DryRun {
		return nil
	}
	p.phase(fmt.Sprintf("sweeping %d tombstone(s)", len(ready)))
	return p.sweep(ctx, ready, ts)
}

// sweep deletes the packs of ready tombstones that no snapshot needs; all
// tombstones are searched when recovering.
func (p *pruner) sweep(ctx context.Context, ready, all []*engine.Tombstone) error {
	roots, err := p.snapshotRoots(ctx)
	if err != nil {
		return err
	}
	recovered, err := p.repo.EnsureReachable(ctx, roots, all)
	if err != nil {
		return err
	}
	p.st.Recovered += len(recovered)
	for _, t := range ready {
		for _, id := range t.Packs {
			if p.repo.IndexHasPack(id) {
				continue // recovered: a snapshot needs it
			}
			h := backend.Handle{Type: backend.PackFile, Name: id.String()}
			fi, err := p.repo.Backend().Stat(ctx, h)
			if backend.IsNotExist(err) {
				continue // deleted by an interrupted sweep
			}
			if err != nil {
				return err
			}
			if err := p.repo.Backend().Remove(ctx, h); err != nil {
				return err
			}
			p.st.DeletedPacks++
			p.st.DeletedObjects++
			p.st.FreedBytes += fi.Size
		}
		if err := p.repo.RemoveTombstone(ctx, t.ID); err != nil {
			return err
		}
		p.st.DeletedObjects++
	}
	return nil
}

// packUse is what the mark phase knows about one indexed pack.
type packUse struct {
	blobs      []pack.Blob
	used, size int64
	usedBlobs  int
}

func (p *pruner) mark(ctx context.Context) error {
	repo := p.repo
	p.phase("loading snapshots and index")
	ts, err := repo.Tombstones(ctx)
	if err != nil {
		return err
	}
	roots, err := p.snapshotRoots(ctx)
	if err != nil {
		return err
	}
	// Packs marked by a pending tombstone may hold blobs that snapshots
	// committed since need; make the index complete before judging.
	if !p.opts.DryRun {
		recovered, err := repo.EnsureReachable(ctx, roots, ts)
		if err != nil {
			return err
		}
		p.st.Recovered += len(recovered)
	}
	// The index files read are replaced below; superseded files that
	// came back (a late retry of an old upload) go with them.
	readFiles := repo.IndexFiles()
	var zombies []blob.ID
	superseded := repo.SupersededIndexFiles()
	if err := repo.List(ctx, backend.IndexFile, func(id blob.ID, _ int64) error {
		if superseded.Has(id) {
			zombies = append(zombies, id)
		}
		return nil
	}); err != nil {
		return err
	}
	readFiles = append(readFiles, zombies...)
	pendingPacks := blob.NewSet()
	var deadMarks []*engine.Tombstone
	for _, t := range ts {
		if t.Provisional {
			// Its prune died before knowing which writers might use
			// its packs: those still unindexed are marked again below,
			// with the writers alive now.
			deadMarks = append(deadMarks, t)
			continue
		}
		for _, id := range t.Packs {
			pendingPacks.Insert(id)
		}
	}

	p.phase("finding referenced data")
	used, err := referenced(ctx, repo, roots)
	if err != nil {
		return err
	}
	packs := make(map[blob.ID]*packUse)
	repo.EachBlob(func(id blob.ID, loc index.Location) bool {
		u := packs[loc.Pack]
		if u == nil {
			u = &packUse{}
			packs[loc.Pack] = u
		}
		b := loc.Blob(id)
		u.blobs = append(u.blobs, b)
		u.size += int64(b.Length)
		if used.Has(id) {
			u.used += int64(b.Length)
			u.usedBlobs++
		}
		return true
	})
	// Storage is listed after the index is read: a writer sharing this
	// Repository (mbackup serve) adds packs to it as they are uploaded, and
	// one uploaded in between must not look indexed but missing. It looks
	// unindexed instead, like any pack of a writer in another process, and
	// its mark waits for that writer, whose index file then keeps it.
	p.sizes = make(map[blob.ID]int64)
	if err := repo.List(ctx, backend.PackFile, func(id blob.ID, size int64) error {
		p.sizes[id] = size
		return nil
	}); err != nil {
		return err
	}

	var marked, keep, repack []blob.ID
	for id, size := range p.sizes {
		u := packs[id]
		p.st.Packs++
		switch {
		case u == nil:
			if pendingPacks.Has(id) {
				continue // already marked, waiting for its sweep
			}
			p.st.PacksUnindexed++
			p.st.UnusedBytes += size
			marked = append(marked, id)
		case u.usedBlobs == 0:
			p.st.PacksUnused++
			p.st.UnusedBytes += size
			marked = append(marked, id)
		case u.usedBlobs < len(u.blobs):
			p.st.PacksPartlyUsed++
			p.st.UsedBytes += u.used
			p.st.UnusedBytes += size - u.used
			if float64(u.size-u.used) > float64(u.size)*p.opts.MaxUnused/100 {
				repack = append(repack, id)
			} else {
				keep = append(keep, id)
			}
		default:
			p.st.PacksUsed++
			p.st.UsedBytes += u.used
			keep = append(keep, id)
		}
	}
	// Indexed packs missing from storage are damage, not garbage.
	for id := range packs {
		if _, ok := p.sizes[id]; !ok {
			return fmt.Errorf("pack %s is indexed but missing from storage: %w (run mbackup check)", id.Short(), engine.ErrBlobNotFound)
		}
	}
	if p.opts.DryRun {
		p.st.Repacked = len(repack)
		p.st.MarkedPacks = len(marked) + len(repack)
		for _, id := range append(append([]blob.ID(nil), marked...), repack...) {
			p.st.MarkedBytes += p.sizes[id]
		}
		return nil
	}
	if len(marked) == 0 && len(repack) == 0 {
		for _, id := range zombies {
			if err := repo.Backend().Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()}); err != nil {
				return err
			}
			p.st.DeletedObjects++
		}
		if err := p.removeTombstones(ctx, deadMarks); err != nil {
			return err
		}
		p.phase("nothing to delete")
		return nil
	}

	// Repack partly used packs: copy their referenced blobs, still sealed.
	var newPacks []index.PackBlobs
	if len(repack) > 0 {
		p.phase(fmt.Sprintf("repacking %d pack(s)", len(repack)))
		if newPacks, err = p.repack(ctx, repack, packs, used); err != nil {
			return err
		}
		marked = append(marked, repack...)
	}

	// Before any index file naming the marked packs goes, or is
	// superseded (a reader that sees the new files ignores the ones they
	// replace, deleted or not), a tombstone names them: a snapshot
	// committed while we mark may need them, and whoever reads it (its
	// writer, a restore, the next prune should this one die) must find
	// them without waiting for our recheck.
	provisional := &engine.Tombstone{Time: time.Now().UTC(), Packs: marked, Provisional: true}
	if err := repo.SaveTombstone(ctx, provisional); err != nil {
		return err
	}
	// New index files for everything kept; then delete the ones read.
	p.phase("writing index")
	var keepBlobs []index.PackBlobs
	for _, id := range keep {
		keepBlobs = append(keepBlobs, index.PackBlobs{ID: id, Blobs: packs[id].blobs})
	}
	if err := writeIndex(ctx, repo, append(keepBlobs, newPacks...), readFiles); err != nil {
		return err
	}
	for _, id := range readFiles {
		if err := repo.Backend().Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()}); err != nil {
			return err
		}
		p.st.DeletedObjects++
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}

	// Only now: who might have read the old index?
	live, err := p.liveSessions(ctx)
	if err != nil {
		return err
	}
	t := &engine.Tombstone{Time: time.Now().UTC(), Packs: marked}
	for name := range live {
		t.Sessions = append(t.Sessions, name)
	}
	sort.Strings(t.Sessions)
	if err := repo.SaveTombstone(ctx, t); err != nil {
		return err
	}
	if err := p.removeTombstones(ctx, append(deadMarks, provisional)); err != nil {
		return err
	}
	p.st.MarkedPacks = len(marked)
	for _, id := range marked {
		p.st.MarkedBytes += p.sizes[id]
	}

	// Writers that committed while we marked are not in the tombstone's
	// list if they already ended: recover what their snapshots need now.
	all := append(ts, t)
	if roots, err = p.snapshotRoots(ctx); err != nil {
		return err
	}
	recovered, err := repo.EnsureReachable(ctx, roots, all)
	if err != nil {
		return err
	}
	p.st.Recovered += len(recovered)

	if len(t.Sessions) > 0 && p.opts.Wait > 0 {
		p.phase(fmt.Sprintf("waiting up to %s for %d writer(s)", p.opts.Wait, len(t.Sessions)))
		if err := p.waitFor(ctx, t.Sessions, p.opts.Wait); err != nil {
			return err
		}
		if live, err = p.liveSessions(ctx); err != nil {
			return err
		}
		t.Sessions = stillLive(t.Sessions, live)
	}
	if len(t.Sessions) > 0 {
		p.st.PendingTombstones++
		for _, s := range t.Sessions {
			l := live[s]
			p.st.WaitingFor = append(p.st.WaitingFor, fmt.Sprintf("%s %s on %s (pid %d)", l.Kind, l.Description, l.Hostname, l.PID))
		}
		p.phase("writers were running: the marked data is deleted by the next prune")
		return nil
	}
	p.phase(fmt.Sprintf("deleting %d pack(s)", len(marked)))
	return p.sweep(ctx, []*engine.Tombstone{t}, all)
}

// removeTombstones deletes provisional tombstones that a complete one (or
// a new judgement of their packs) replaced.
func (p *pruner) removeTombstones(ctx context.Context, ts []*engine.Tombstone) error {
	for _, t := range ts {
		if err := p.repo.RemoveTombstone(ctx, t.ID); err != nil && !backend.IsNotExist(err) {
			return err
		}
		p.st.DeletedObjects++
	}
	return nil
}

func stillLive(names []string, live map[string]engine.Lock) []string {
	var out []string
	for _, n := range names {
		if _, ok := live[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

func (p *pruner) waitFor(ctx context.Context, sessions []string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		live, err := p.liveSessions(ctx)
		if err != nil {
			return err
		}
		if len(stillLive(sessions, live)) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}

// writeIndex stores index files for packs, the first one declaring that it
// supersedes the files read.
func writeIndex(ctx context.Context, repo *engine.Repository, packs []index.PackBlobs, supersedes []blob.ID) error {
	const perFile = 65536
	first := true
	for len(packs) > 0 || first {
		f := index.File{}
		if first {
			f.Supersedes = supersedes
			first = false
		}
		n := 0
		for len(packs) > 0 && (n == 0 || n+len(packs[0].Blobs) <= perFile) {
			f.Packs = append(f.Packs, packs[0])
			n += len(packs[0].Blobs)
			packs = packs[1:]
		}
		if _, err := repo.SaveUnpacked(ctx, backend.IndexFile, f.Encode()); err != nil {
			return fmt.Errorf("write index: %w", err)
		}
	}
	return nil
}

package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/snapshot"
)

// RepoInventory is the Inventory of a repository. Snapshot files are
// immutable and named by their content, so it loads each one once and
// afterwards only lists the folder: one LIST per refresh instead of one
// GET per snapshot.
type RepoInventory struct {
	repo *engine.Repository

	mu    sync.Mutex
	cache map[blob.ID]*snapshot.Snapshot
}

// NewRepoInventory returns the inventory of repo.
func NewRepoInventory(repo *engine.Repository) *RepoInventory {
	return &RepoInventory{repo: repo, cache: map[blob.ID]*snapshot.Snapshot{}}
}

// Snapshots implements Inventory. Snapshot files that do not load are
// reported in the error (run mbackup check) and left out.
func (inv *RepoInventory) Snapshots(ctx context.Context) ([]*snapshot.Snapshot, error) {
	var ids []blob.ID
	if err := inv.repo.List(ctx, backend.SnapshotFile, func(id blob.ID, _ int64) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	present := make(map[blob.ID]bool, len(ids))
	var missing []blob.ID
	for _, id := range ids {
		present[id] = true
		if _, ok := inv.cache[id]; !ok {
			missing = append(missing, id)
		}
	}
	for id := range inv.cache {
		if !present[id] {
			delete(inv.cache, id)
		}
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, id := range missing {
		g.Go(func() error {
			sn, err := inv.repo.LoadSnapshot(gctx, id)
			var s *snapshot.Snapshot
			if err == nil {
				s, err = snapshot.FromEngine(sn)
				if errors.Is(err, snapshot.ErrNotMoodle) {
					return nil
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				errs = append(errs, fmt.Errorf("snapshot %s: %w", id.Short(), err))
				return nil
			}
			inv.cache[id] = s
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]*snapshot.Snapshot, 0, len(inv.cache))
	for _, s := range inv.cache {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *snapshot.Snapshot) int {
		return cmp.Or(a.Time.Compare(b.Time), a.ID().Compare(b.ID()))
	})
	if len(errs) > 0 {
		return out, fmt.Errorf("%d snapshot file(s) unreadable (run mbackup check): %w", len(errs), errors.Join(errs...))
	}
	return out, nil
}

// Size implements Inventory: the sum of every file's stored size.
func (inv *RepoInventory) Size(ctx context.Context) (int64, error) {
	var total int64
	be := inv.repo.Backend()
	for _, t := range backend.FileTypes {
		if err := be.List(ctx, t, func(fi backend.FileInfo) error {
			total += fi.Size
			return nil
		}); err != nil {
			return 0, fmt.Errorf("measure repository: list %s files: %w", t, err)
		}
	}
	return total, nil
}

package engine

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/index"
)

// RebuildStats reports an index rebuild.
type RebuildStats struct {
	Packs, Blobs int
	// DamagedPacks could not be read; their blobs are not indexed.
	DamagedPacks []blob.ID
	// Replaced is the number of index files replaced (damaged or not).
	Replaced int
}

// RebuildIndex rewrites the index from the packs themselves: every pack's
// header is read and new index files describing all packs replace the
// existing ones, readable or damaged. It is the repair for a damaged or
// lost index file; it never deletes a pack. The caller must hold off
// prunes (it runs under a prune lock in the CLI); backups may run.
func (r *Repository) RebuildIndex(ctx context.Context, progress func(done, total int)) (*RebuildStats, error) {
	var packs, old []blob.ID
	if err := r.List(ctx, backend.PackFile, func(id blob.ID, _ int64) error {
		packs = append(packs, id)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	if err := r.List(ctx, backend.IndexFile, func(id blob.ID, _ int64) error {
		old = append(old, id)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	st := &RebuildStats{Replaced: len(old)}
	entries := make([]index.PackBlobs, len(packs))
	ok := make([]bool, len(packs))
	done := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	var mu sync.Mutex
	for i, id := range packs {
		g.Go(func() error {
			blobs, err := r.PackHeader(gctx, id)
			mu.Lock()
			defer mu.Unlock()
			done++
			if progress != nil {
				progress(done, len(packs))
			}
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				st.DamagedPacks = append(st.DamagedPacks, id)
				return nil
			}
			entries[i], ok[i] = index.PackBlobs{ID: id, Blobs: blobs}, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	var keep []index.PackBlobs
	for i, e := range entries {
		if ok[i] {
			keep = append(keep, e)
			st.Packs++
			st.Blobs += len(e.Blobs)
		}
	}
	// New files first, old ones afterwards: a crash in between leaves
	// overlapping index files, which readers accept.
	first := true
	for len(keep) > 0 || first {
		f := index.File{}
		if first {
			f.Supersedes = old
			first = false
		}
		n := 0
		for len(keep) > 0 && (n == 0 || n+len(keep[0].Blobs) <= indexFileBlobs) {
			f.Packs = append(f.Packs, keep[0])
			n += len(keep[0].Blobs)
			keep = keep[1:]
		}
		if _, err := r.SaveUnpacked(ctx, backend.IndexFile, f.Encode()); err != nil {
			return nil, fmt.Errorf("rebuild index: %w", err)
		}
	}
	for _, id := range old {
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()}); err != nil {
			return nil, fmt.Errorf("rebuild index: %w", err)
		}
	}
	return st, r.LoadIndex(ctx)
}

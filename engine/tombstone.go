package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/index"
	"github.com/mbackup/mbackup/engine/pack"
	"github.com/mbackup/mbackup/engine/tree"
)

// Tombstone lists packs that prune marked for deletion: no index file
// names them any more, but they stay in storage until every writer that
// may have read an index naming them has ended (Sessions), and are then
// deleted unless a snapshot turned out to need them. See package prune
// for the protocol.
type Tombstone struct {
	Time     time.Time `json:"time"`
	Packs    []blob.ID `json:"packs"`
	Sessions []string  `json:"sessions"`
	// Provisional marks a tombstone written before prune deleted the
	// index files naming its packs, when the writers that may have read
	// those files were not yet known. It is never swept: it only lets
	// readers find the marked packs at once. Prune replaces it by a
	// complete tombstone; one left by a prune that died is dropped by
	// the next prune, which judges its packs again.
	Provisional bool `json:"provisional,omitempty"`

	ID blob.ID `json:"-"`
}

// SaveTombstone stores a tombstone.
func (r *Repository) SaveTombstone(ctx context.Context, t *Tombstone) error {
	plain, err := json.Marshal(t)
	if err != nil {
		return err
	}
	id, err := r.SaveUnpacked(ctx, backend.TombstoneFile, plain)
	if err != nil {
		return fmt.Errorf("save tombstone: %w", err)
	}
	t.ID = id
	return nil
}

// Tombstones loads every tombstone.
func (r *Repository) Tombstones(ctx context.Context) ([]*Tombstone, error) {
	// A tombstone that vanished between listing and reading was swept,
	// or replaced: prune saves a provisional tombstone's successor before
	// removing it, so listing again finds the successor.
	for attempt := 0; ; attempt++ {
		ts, vanished, err := r.tombstones(ctx)
		if err != nil || !vanished || attempt == 4 {
			return ts, err
		}
	}
}

func (r *Repository) tombstones(ctx context.Context) (ts []*Tombstone, vanished bool, err error) {
	var ids []blob.ID
	if err := r.List(ctx, backend.TombstoneFile, func(id blob.ID, _ int64) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return nil, false, fmt.Errorf("list tombstones: %w", err)
	}
	ts = make([]*Tombstone, 0, len(ids))
	for _, id := range ids {
		plain, err := r.LoadUnpacked(ctx, backend.TombstoneFile, id)
		if backend.IsNotExist(err) {
			vanished = true
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("load tombstone %s: %w", id.Short(), err)
		}
		t := &Tombstone{}
		if err := json.Unmarshal(plain, t); err != nil {
			return nil, false, fmt.Errorf("load tombstone %s: %w: %v", id.Short(), ErrDamaged, err)
		}
		t.ID = id
		ts = append(ts, t)
	}
	return ts, vanished, nil
}

// RemoveTombstone deletes a tombstone once its packs are gone.
func (r *Repository) RemoveTombstone(ctx context.Context, id blob.ID) error {
	return r.be.Remove(ctx, backend.Handle{Type: backend.TombstoneFile, Name: id.String()})
}

// PackHeader reads the blob list of a stored pack.
func (r *Repository) PackHeader(ctx context.Context, id blob.ID) ([]pack.Blob, error) {
	h := backend.Handle{Type: backend.PackFile, Name: id.String()}
	fi, err := r.be.Stat(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("read header of pack %s: %w", id.Short(), err)
	}
	blobs, err := pack.ReadHeader(ctx, r.key, fi.Size, func(ctx context.Context, off int64, n int) ([]byte, error) {
		return backend.ReadAt(ctx, r.be, h, off, n)
	})
	if err != nil {
		return nil, fmt.Errorf("read header of pack %s: %w", id.Short(), err)
	}
	return blobs, nil
}

// RecoverPacks puts stored packs back into the index: their headers are
// read and written as a new index file. Prune calls it for marked packs
// that a snapshot turned out to need; so do writers that committed such a
// snapshot.
func (r *Repository) RecoverPacks(ctx context.Context, packs []blob.ID) error {
	if len(packs) == 0 {
		return nil
	}
	var f index.File
	for _, id := range packs {
		blobs, err := r.PackHeader(ctx, id)
		if err != nil {
			return err
		}
		f.Packs = append(f.Packs, index.PackBlobs{ID: id, Blobs: blobs})
	}
	// As every index write: a concurrent LoadIndex that rebuilds from a
	// listing taken before this file existed would drop its entries.
	m := r.idx
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	fileID, err := r.SaveUnpacked(ctx, backend.IndexFile, f.Encode())
	if err != nil {
		return fmt.Errorf("recover packs: save index: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range f.Packs {
		for _, b := range p.Blobs {
			m.idx.Add(p.ID, b)
		}
	}
	m.files.Insert(fileID)
	return nil
}

// MarkedBlobs maps every blob of the packs named by tombstones to its
// pack, reading the packs' headers. Packs already deleted are skipped.
func (r *Repository) MarkedBlobs(ctx context.Context, ts []*Tombstone) (map[blob.ID]blob.ID, error) {
	out := make(map[blob.ID]blob.ID)
	for _, t := range ts {
		for _, p := range t.Packs {
			blobs, err := r.PackHeader(ctx, p)
			if backend.IsNotExist(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, b := range blobs {
				out[b.ID] = p
			}
		}
	}
	return out, nil
}

// Unindexed walks the trees below roots and returns the referenced blobs
// (trees and data) that the in-memory index lacks. Trees that cannot be
// loaded because they are unindexed are reported too; what is below them
// is not visited.
func (r *Repository) Unindexed(ctx context.Context, roots []blob.ID) (blob.Set, error) {
	missing := blob.NewSet()
	seen := blob.NewSet()
	var walk func(id blob.ID) error
	walk = func(id blob.ID) error {
		if seen.Has(id) {
			return nil
		}
		seen.Insert(id)
		if _, ok := r.Lookup(id); !ok {
			missing.Insert(id)
			return nil
		}
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		for _, n := range t.Nodes {
			switch n.Type {
			case tree.Dir:
				if err := walk(*n.Subtree); err != nil {
					return err
				}
			case tree.File:
				for _, b := range n.Content {
					if _, ok := r.Lookup(b); !ok {
						missing.Insert(b)
					}
				}
			}
		}
		return nil
	}
	for _, root := range roots {
		if err := walk(root); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// EnsureReachable makes every blob referenced below roots indexed again,
// recovering marked packs that hold blobs the index lacks. It repeats until
// nothing is missing, since a recovered tree can reveal more references.
// A blob in no index and no marked pack is an error: the repository is
// damaged.
func (r *Repository) EnsureReachable(ctx context.Context, roots []blob.ID, ts []*Tombstone) (recovered []blob.ID, err error) {
	var marked map[blob.ID]blob.ID
	for round := 0; round < 64; round++ {
		missing, err := r.Unindexed(ctx, roots)
		if err != nil {
			return recovered, err
		}
		if len(missing) == 0 {
			return recovered, nil
		}
		if round == 0 {
			// A writer may have added index files since the caller
			// loaded the index: look again before recovering anything.
			if err := r.LoadIndex(ctx); err != nil {
				return recovered, err
			}
			if missing, err = r.Unindexed(ctx, roots); err != nil || len(missing) == 0 {
				return recovered, err
			}
		}
		if marked == nil {
			if marked, err = r.MarkedBlobs(ctx, ts); err != nil {
				return recovered, err
			}
		}
		packs := blob.NewSet()
		for id := range missing {
			p, ok := marked[id]
			if !ok {
				return recovered, fmt.Errorf("blob %s is referenced but in no index and no marked pack: %w (run mbackup check)", id.Short(), ErrBlobNotFound)
			}
			packs.Insert(p)
		}
		list := packs.List()
		if err := r.RecoverPacks(ctx, list); err != nil {
			return recovered, err
		}
		recovered = append(recovered, list...)
	}
	return recovered, fmt.Errorf("recovering marked packs did not converge")
}

// recoverMarked runs after a writer committed sn, and when a session
// pins sn to read it: if a prune marked packs meanwhile, sn may reference
// blobs in them; those packs are re-indexed so that prune keeps them,
// check finds them and a restore can read them.
func (r *Repository) recoverMarked(ctx context.Context, sn *Snapshot) error {
	ts, err := r.Tombstones(ctx)
	if err != nil || len(ts) == 0 {
		return err
	}
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	_, err = r.EnsureReachable(ctx, []blob.ID{sn.Tree}, ts)
	return err
}

package prune

import (
	"context"
	"fmt"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/index"
	"github.com/mbackup/mbackup/engine/pack"
)

// repack copies the referenced blobs of packs into new packs, verifying
// each on the way (a damaged blob stops the prune rather than being
// carried over), and uploads them. Blobs stay sealed: no re-encryption.
func (p *pruner) repack(ctx context.Context, ids []blob.ID, packs map[blob.ID]*packUse, used blob.Set) ([]index.PackBlobs, error) {
	repo := p.repo
	size := repo.Config().PackSize
	writers := map[blob.Type]*pack.Writer{}
	var out []index.PackBlobs
	flush := func(t blob.Type) error {
		w := writers[t]
		if w == nil || w.Count() == 0 {
			return nil
		}
		blobs := append([]pack.Blob(nil), w.Blobs()...)
		data, id := w.Finalize()
		if err := backend.SaveBytes(ctx, repo.Backend(), backend.Handle{Type: backend.PackFile, Name: id.String()}, data); err != nil {
			return fmt.Errorf("upload repacked pack: %w", err)
		}
		out = append(out, index.PackBlobs{ID: id, Blobs: blobs})
		p.st.NewPacks++
		delete(writers, t)
		return nil
	}
	copied := blob.NewSet()
	var buf []byte
	for _, id := range ids {
		data, err := backend.ReadAll(ctx, repo.Backend(), backend.Handle{Type: backend.PackFile, Name: id.String()})
		if err != nil {
			return nil, fmt.Errorf("read pack %s for repacking: %w", id.Short(), err)
		}
		p.st.Repacked++
		p.st.RepackedBytes += int64(len(data))
		for _, b := range packs[id].blobs {
			if !used.Has(b.ID) || copied.Has(b.ID) {
				continue
			}
			if int(b.Offset)+int(b.Length) > len(data) {
				return nil, fmt.Errorf("pack %s: blob %s beyond its end: %w", id.Short(), b.ID.Short(), engine.ErrDamaged)
			}
			sealed := data[b.Offset : b.Offset+b.Length]
			if buf, err = repo.OpenBlobChecked(b, sealed, buf); err != nil {
				return nil, fmt.Errorf("pack %s: %w", id.Short(), err)
			}
			w := writers[b.Type]
			if w == nil {
				w = pack.NewWriter(repo.Key(), size)
				writers[b.Type] = w
			}
			w.Add(b.Type, b.ID, sealed, int(b.RawLength), b.Compressed)
			copied.Insert(b.ID)
			if w.Size() >= size {
				if err := flush(b.Type); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, t := range []blob.Type{blob.Data, blob.Tree} {
		if err := flush(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// referenced returns every blob (trees and data) the snapshots reference.
func referenced(ctx context.Context, repo *engine.Repository, roots []blob.ID) (blob.Set, error) {
	missing, err := repo.Unindexed(ctx, roots)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%d referenced blobs are in no index: %w (run mbackup check)", len(missing), engine.ErrBlobNotFound)
	}
	used := blob.NewSet()
	err = repo.WalkTrees(ctx, roots, func(id blob.ID, content []blob.ID) {
		used.Insert(id)
		for _, b := range content {
			used.Insert(b)
		}
	})
	return used, err
}

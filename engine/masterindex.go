package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/index"
	"github.com/mbackup/mbackup/engine/pack"
)

// indexFileBlobs caps the blobs per index file, keeping each file a few
// MiB so that loading parallelises and no single object is large.
const indexFileBlobs = 65536

// writeIndexEvery is the number of uploaded packs after which the
// uploader writes an index file without waiting for a flush, so a crash
// during a long first backup keeps most of its work for the next run.
const writeIndexEvery = 64

// masterIndex is the repository-wide view of which blobs exist: the merged
// index files, plus blobs in packs this process is assembling or uploading.
type masterIndex struct {
	mu         sync.RWMutex
	idx        *index.Index
	files      blob.Set             // index files merged into idx
	superseded blob.Set             // index files some merged file supersedes
	pending    map[blob.ID]struct{} // in open or uploading packs
	unwritten  []index.PackBlobs    // uploaded, in no index file yet

	// writeMu serialises index writes with rebuilds, so a rebuild never
	// misses a file written while it ran.
	writeMu sync.Mutex
}

func newMasterIndex() *masterIndex {
	return &masterIndex{idx: index.New(), files: blob.NewSet(), superseded: blob.NewSet(), pending: make(map[blob.ID]struct{})}
}

// reserve claims id for storing. It returns false when the blob exists or
// is being stored already.
func (m *masterIndex) reserve(id blob.ID) bool {
	m.mu.RLock()
	known := m.idx.Has(id)
	m.mu.RUnlock()
	if known {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.idx.Has(id) {
		return false
	}
	if _, ok := m.pending[id]; ok {
		return false
	}
	m.pending[id] = struct{}{}
	return true
}

func (m *masterIndex) has(id blob.ID) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.idx.Has(id) {
		return true
	}
	_, ok := m.pending[id]
	return ok
}

func (m *masterIndex) lookup(id blob.ID) (index.Location, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.idx.Lookup(id)
}

// uploaded moves a pack's blobs from pending to the index; it returns the
// number of packs waiting for an index file.
func (m *masterIndex) uploaded(packID blob.ID, blobs []pack.Blob) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range blobs {
		m.idx.Add(packID, b)
		delete(m.pending, b.ID)
	}
	m.unwritten = append(m.unwritten, index.PackBlobs{ID: packID, Blobs: blobs})
	return len(m.unwritten)
}

// failed forgets the blobs of a pack whose upload failed, so later saves
// store them again.
func (m *masterIndex) failed(blobs []pack.Blob) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range blobs {
		delete(m.pending, b.ID)
	}
}

// writeIndex stores index files for all uploaded packs not yet in one.
func (m *masterIndex) writeIndex(ctx context.Context, r *Repository) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	packs := m.unwritten
	m.unwritten = nil
	m.mu.Unlock()
	for len(packs) > 0 {
		var f index.File
		n := 0
		for len(packs) > 0 && (n == 0 || n+len(packs[0].Blobs) <= indexFileBlobs) {
			f.Packs = append(f.Packs, packs[0])
			n += len(packs[0].Blobs)
			packs = packs[1:]
		}
		id, err := r.SaveUnpacked(ctx, backend.IndexFile, f.Encode())
		if err != nil {
			m.mu.Lock()
			m.unwritten = append(append(f.Packs, packs...), m.unwritten...)
			m.mu.Unlock()
			return fmt.Errorf("save index: %w", err)
		}
		m.mu.Lock()
		m.files.Insert(id)
		m.mu.Unlock()
	}
	return nil
}

// LoadIndex brings the in-memory index up to date with the index files in
// the repository: new files are merged in; if files disappeared (prune
// superseded them) the index is rebuilt from the files that remain.
func (r *Repository) LoadIndex(ctx context.Context) error {
	// A prune may delete index files between our listing and our reading
	// them (it wrote their replacements first): list again and retry.
	// Back off a little: prunes following each other closely keep
	// replacing the files.
	var err error
	wait := 20 * time.Millisecond
	for attempt := 0; attempt < 8; attempt++ {
		if err = r.loadIndex(ctx); err == nil || !backend.IsNotExist(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
	return err
}

func (r *Repository) loadIndex(ctx context.Context) error {
	m := r.idx
	m.writeMu.Lock()
	defer m.writeMu.Unlock()

	var listed []blob.ID
	if err := r.List(ctx, backend.IndexFile, func(id blob.ID, _ int64) error {
		listed = append(listed, id)
		return nil
	}); err != nil {
		return fmt.Errorf("load index: %w", err)
	}
	listedSet := blob.NewSet(listed...)
	m.mu.RLock()
	rebuild := false
	for id := range m.files {
		if !listedSet.Has(id) {
			rebuild = true
			break
		}
	}
	known := m.files
	skip := m.superseded
	m.mu.RUnlock()
	fresh := freshFiles(listed, known, skip, rebuild)
	files, err := r.loadIndexFiles(ctx, fresh)
	if err != nil {
		return err
	}
	// A file that a newer one supersedes is ignored even if it still
	// exists: prune deleted it, but a delayed retry of an old upload can
	// bring it back, and its entries would resurrect packs marked for
	// deletion.
	newlySuperseded := blob.NewSet()
	for _, f := range files {
		for _, id := range f.Supersedes {
			newlySuperseded.Insert(id)
		}
	}
	if !rebuild {
		for id := range newlySuperseded {
			if known.Has(id) {
				// Something merged must go: start over from all files.
				rebuild = true
				fresh = freshFiles(listed, known, nil, true)
				if files, err = r.loadIndexFiles(ctx, fresh); err != nil {
					return err
				}
				break
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rebuild {
		m.idx = index.New()
		m.files = blob.NewSet()
		m.superseded = blob.NewSet()
		for _, p := range m.unwritten {
			for _, b := range p.Blobs {
				m.idx.Add(p.ID, b)
			}
		}
	}
	for _, f := range files {
		for _, id := range f.Supersedes {
			m.superseded.Insert(id)
		}
	}
	for i, f := range files {
		if m.superseded.Has(fresh[i]) {
			continue
		}
		for _, p := range f.Packs {
			for _, b := range p.Blobs {
				m.idx.Add(p.ID, b)
			}
		}
		m.files.Insert(fresh[i])
	}
	return nil
}

// freshFiles returns the listed index files to load: all of them for a
// rebuild, else those neither merged nor known to be superseded.
func freshFiles(listed []blob.ID, known, superseded blob.Set, all bool) []blob.ID {
	var out []blob.ID
	for _, id := range listed {
		if all || !known.Has(id) && !superseded.Has(id) {
			out = append(out, id)
		}
	}
	return out
}

// SupersededIndexFiles returns the index files that merged files declare
// they supersede. Prune deletes those that still exist.
func (r *Repository) SupersededIndexFiles() blob.Set {
	m := r.idx
	m.mu.RLock()
	defer m.mu.RUnlock()
	return blob.NewSet(m.superseded.List()...)
}

func (r *Repository) loadIndexFiles(ctx context.Context, ids []blob.ID) ([]*index.File, error) {
	files := make([]*index.File, len(ids))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, id := range ids {
		g.Go(func() error {
			f, err := r.LoadIndexFile(ctx, id)
			if err != nil {
				return err
			}
			files[i] = f
			return nil
		})
	}
	return files, g.Wait()
}

// LoadIndexFile loads and decodes one index file.
func (r *Repository) LoadIndexFile(ctx context.Context, id blob.ID) (*index.File, error) {
	data, err := r.LoadUnpacked(ctx, backend.IndexFile, id)
	if err != nil {
		return nil, fmt.Errorf("load index %s: %w", id.Short(), err)
	}
	f, err := index.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("load index %s: %w", id.Short(), err)
	}
	return f, nil
}

// Lookup returns where a blob is stored.
func (r *Repository) Lookup(id blob.ID) (index.Location, bool) { return r.idx.lookup(id) }

// HasBlob reports whether a blob is stored or being stored.
func (r *Repository) HasBlob(id blob.ID) bool { return r.idx.has(id) }

// IndexStats reports the size of the in-memory index.
type IndexStats struct {
	Blobs, Packs, Files int
	MemoryBytes         int
}

// IndexStats returns figures about the in-memory index.
func (r *Repository) IndexStats() IndexStats {
	m := r.idx
	m.mu.RLock()
	defer m.mu.RUnlock()
	return IndexStats{Blobs: m.idx.Len(), Packs: m.idx.PackCount(), Files: len(m.files), MemoryBytes: m.idx.MemoryBytes()}
}

// EachBlob calls fn for every indexed blob until fn returns false. The
// index is locked for reading meanwhile, so fn must not call back into
// the repository's index.
func (r *Repository) EachBlob(fn func(id blob.ID, loc index.Location) bool) {
	m := r.idx
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.idx.Each(fn)
}

// IndexFiles returns the IDs of the index files merged into memory.
func (r *Repository) IndexFiles() []blob.ID {
	m := r.idx
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.files.List()
}

// IndexHasPack reports whether an index file loaded in memory names pack id.
func (r *Repository) IndexHasPack(id blob.ID) bool {
	m := r.idx
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.idx.HasPack(id)
}

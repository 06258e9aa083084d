package engine

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/tree"
)

// treePackCacheBytes bounds the memory of the tree pack cache.
const treePackCacheBytes = 64 << 20

// SaveTree encodes and stores a tree, returning its ID.
func (r *Repository) SaveTree(ctx context.Context, t *tree.Tree) (Saved, error) {
	data, err := t.Encode()
	if err != nil {
		return Saved{}, fmt.Errorf("encode tree: %w", err)
	}
	return r.SaveBlob(ctx, blob.Tree, data)
}

// LoadTree loads and decodes a tree. Tree blobs live in packs of their
// own, so LoadTree fetches a tree's whole pack once and serves the other
// trees of that pack from memory: walking a folder with tens of thousands
// of subfolders (Moodle's filedir has up to 65,536) costs a few requests,
// not one per folder.
func (r *Repository) LoadTree(ctx context.Context, id blob.ID) (*tree.Tree, error) {
	loc, ok := r.idx.lookup(id)
	if !ok {
		return nil, fmt.Errorf("load tree %s: %w", id.Short(), ErrBlobNotFound)
	}
	data, err := r.treePacks().get(ctx, r, loc.Pack)
	if err != nil {
		return nil, fmt.Errorf("load tree %s: %w", id.Short(), err)
	}
	end := int(loc.Offset) + int(loc.Length)
	if end > len(data) {
		return nil, fmt.Errorf("load tree %s: %w: pack %s is %d bytes, blob ends at %d", id.Short(), ErrDamaged, loc.Pack.Short(), len(data), end)
	}
	plain, err := r.OpenBlob(loc.Blob(id), data[loc.Offset:end], nil)
	if err != nil {
		return nil, fmt.Errorf("load tree %s: %w", id.Short(), err)
	}
	t, err := tree.Decode(plain)
	if err != nil {
		return nil, fmt.Errorf("load tree %s: %w", id.Short(), err)
	}
	return t, nil
}

func (r *Repository) treePacks() *packCache {
	r.treeCacheOnce.Do(func() { r.treeCache = newPackCache(treePackCacheBytes) })
	return r.treeCache
}

// packCache keeps whole packs in memory, least recently used first out.
type packCache struct {
	mu      sync.Mutex
	max     int
	size    int
	order   *list.List // of blob.ID, front = most recent
	entries map[blob.ID]*cacheEntry
}

type cacheEntry struct {
	elem  *list.Element
	data  []byte
	ready chan struct{}
	err   error
}

func newPackCache(max int) *packCache {
	return &packCache{max: max, order: list.New(), entries: make(map[blob.ID]*cacheEntry)}
}

func (c *packCache) get(ctx context.Context, r *Repository, id blob.ID) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.entries[id]; ok {
		c.order.MoveToFront(e.elem)
		c.mu.Unlock()
		<-e.ready
		return e.data, e.err
	}
	e := &cacheEntry{ready: make(chan struct{})}
	e.elem = c.order.PushFront(id)
	c.entries[id] = e
	c.mu.Unlock()

	e.data, e.err = backend.ReadAll(ctx, r.be, backend.Handle{Type: backend.PackFile, Name: id.String()})
	close(e.ready)

	c.mu.Lock()
	defer c.mu.Unlock()
	if e.err != nil {
		c.order.Remove(e.elem)
		delete(c.entries, id)
		return nil, e.err
	}
	c.size += len(e.data)
	for c.size > c.max && c.order.Len() > 1 {
		last := c.order.Back()
		lid := last.Value.(blob.ID)
		le := c.entries[lid]
		select {
		case <-le.ready:
		default:
			return e.data, nil // still loading; evict later
		}
		c.order.Remove(last)
		delete(c.entries, lid)
		c.size -= len(le.data)
	}
	return e.data, nil
}

// DropTreeCache frees the packs of trees kept in memory, for a caller that
// has read every tree it needs (a restore, once planned). Later loads read
// the packs again.
func (r *Repository) DropTreeCache() { r.treePacks().clear() }

// clear drops every loaded pack; packs still loading stay.
func (c *packCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.entries {
		select {
		case <-e.ready:
		default:
			continue
		}
		c.order.Remove(e.elem)
		delete(c.entries, id)
		c.size -= len(e.data)
	}
}

// WalkTrees visits every tree below roots once, calling fn with the tree's
// ID and the content blobs of the files directly in it.
func (r *Repository) WalkTrees(ctx context.Context, roots []blob.ID, fn func(id blob.ID, content []blob.ID)) error {
	seen := blob.NewSet()
	var walk func(id blob.ID) error
	walk = func(id blob.ID) error {
		if seen.Has(id) {
			return nil
		}
		seen.Insert(id)
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		var content []blob.ID
		for _, n := range t.Nodes {
			switch n.Type {
			case tree.Dir:
				if err := walk(*n.Subtree); err != nil {
					return err
				}
			case tree.File:
				content = append(content, n.Content...)
			}
		}
		fn(id, content)
		return nil
	}
	for _, root := range roots {
		if err := walk(root); err != nil {
			return err
		}
	}
	return nil
}

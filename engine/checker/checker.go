// Package checker verifies a repository.
//
// The structural check loads every index file and snapshot, walks every
// snapshot's trees and confirms that each referenced blob is indexed and
// each indexed pack exists. Reading data (all packs, or a subset) also
// downloads packs and checks each one against its name, its header against
// the index, and every blob's authentication tag and keyed hash. Damage is
// reported per pack, and then per snapshot: which snapshots need the
// damaged data and would not restore.
//
// Unreferenced data (packs from an interrupted backup, blobs of forgotten
// snapshots) is not damage: it is counted and left to prune.
package checker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/index"
	"github.com/mbackup/mbackup/engine/pack"
	"github.com/mbackup/mbackup/engine/tree"
)

// Subset selects packs to read.
type Subset struct {
	// Percent of packs chosen at random (0 < Percent ≤ 100), or
	Percent float64
	// group N of T deterministic groups: running 1/T … T/T reads
	// everything once.
	N, T int
}

// ParseSubset parses "5%" or "2/7".
func ParseSubset(s string) (Subset, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v > 100 {
			return Subset{}, fmt.Errorf("read-data subset %q: want a percentage in (0, 100], like 5%%", s)
		}
		return Subset{Percent: v}, nil
	}
	if a, b, ok := strings.Cut(s, "/"); ok {
		n, err1 := strconv.Atoi(a)
		t, err2 := strconv.Atoi(b)
		if err1 == nil && err2 == nil && t >= 1 && n >= 1 && n <= t {
			return Subset{N: n, T: t}, nil
		}
	}
	return Subset{}, fmt.Errorf("read-data subset %q: want a percentage like 5%% or a group like 1/5", s)
}

func (s Subset) String() string {
	if s.T > 0 {
		return fmt.Sprintf("%d/%d", s.N, s.T)
	}
	return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
}

// Options select what is checked.
type Options struct {
	// ReadData reads every pack.
	ReadData bool
	// Subset reads only some packs (implies reading data).
	Subset *Subset
	// Workers is the number of packs read at once (default 4).
	Workers int
	// Progress receives packs read so far and the total.
	Progress func(done, total int)
}

// DamagedSnapshot names a snapshot that cannot be fully restored.
type DamagedSnapshot struct {
	ID     blob.ID
	Source string
	Time   time.Time
	Reason string
}

// Result is the outcome of a check.
type Result struct {
	Snapshots, Trees, IndexFiles, Packs int
	Blobs                               int // indexed
	ReferencedBlobs                     int
	UnindexedPacks                      int
	PacksRead                           int
	BytesRead                           int64

	// Errors lists damage, one line each; the repository is healthy when
	// it is empty.
	Errors []string
	// DamagedPacks and DamagedSnapshots detail the damage.
	DamagedPacks     []blob.ID
	DamagedSnapshots []DamagedSnapshot
	// Notes lists harmless findings (unreferenced data).
	Notes []string
}

// OK reports whether no damage was found.
func (r *Result) OK() bool { return len(r.Errors) == 0 }

type checker struct {
	repo *engine.Repository
	opts Options
	res  *Result

	mu    sync.Mutex
	packs map[blob.ID]int64 // listed packs and sizes

	indexedIn map[blob.ID][]blob.ID // pack -> blobs per index (for read-data)

	tombstones []*engine.Tombstone
	marked     map[blob.ID]blob.ID // blobs of packs marked by prune, loaded lazily
	pending    blob.Set            // referenced blobs found only in marked packs
}

// inMarked reports whether a blob missing from the index sits in a pack
// that a running prune marked: the prune (or the writer that referenced it)
// re-indexes such packs, so this is a transient state, not damage.
func (c *checker) inMarked(ctx context.Context, id blob.ID) bool {
	if len(c.tombstones) == 0 {
		return false
	}
	if c.marked == nil {
		m, err := c.repo.MarkedBlobs(ctx, c.tombstones)
		if err != nil {
			m = map[blob.ID]blob.ID{}
		}
		c.marked = m
	}
	_, ok := c.marked[id]
	if ok {
		c.pending.Insert(id)
	}
	return ok
}

// Check verifies repo. It returns an error only when the check itself
// cannot run (storage unreachable); damage is reported in the Result.
func Check(ctx context.Context, repo *engine.Repository, opts Options) (*Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	c := &checker{repo: repo, opts: opts, res: &Result{}, packs: make(map[blob.ID]int64), indexedIn: make(map[blob.ID][]blob.ID), pending: blob.NewSet()}
	ts, err := repo.Tombstones(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	c.tombstones = ts
	if err := repo.List(ctx, backend.PackFile, func(id blob.ID, size int64) error {
		c.packs[id] = size
		return nil
	}); err != nil {
		return nil, fmt.Errorf("check: list packs: %w", err)
	}
	c.res.Packs = len(c.packs)
	if err := c.checkIndex(ctx); err != nil {
		return nil, err
	}
	sns, err := repo.Snapshots(ctx)
	if err != nil {
		if d, ok := err.(*engine.DamagedSnapshotError); ok {
			for i, id := range d.IDs {
				c.errorf("snapshot file %s is unreadable: %v", id.Short(), d.Errs[i])
				c.res.DamagedSnapshots = append(c.res.DamagedSnapshots, DamagedSnapshot{ID: id, Reason: "snapshot file unreadable"})
			}
		} else {
			return nil, fmt.Errorf("check: %w", err)
		}
	}
	c.res.Snapshots = len(sns)
	referenced, err := c.checkSnapshots(ctx, sns, nil)
	if err != nil {
		return nil, err
	}
	c.res.ReferencedBlobs = len(referenced)
	if len(c.pending) > 0 {
		c.res.Notes = append(c.res.Notes, fmt.Sprintf("%d referenced blobs are in packs a running prune marked; it puts them back in the index", len(c.pending)))
	}
	if unref := c.res.Blobs - len(referenced); unref > 0 {
		c.res.Notes = append(c.res.Notes, fmt.Sprintf("%d indexed blobs are not referenced by any snapshot (prune removes them)", unref))
	}
	if opts.ReadData || opts.Subset != nil {
		damagedBlobs, err := c.readData(ctx)
		if err != nil {
			return nil, err
		}
		if len(damagedBlobs) > 0 {
			if _, err := c.checkSnapshots(ctx, sns, damagedBlobs); err != nil {
				return nil, err
			}
		}
	}
	sort.Strings(c.res.Errors)
	return c.res, nil
}

// reported reports whether a snapshot is already listed as damaged.
func (c *checker) reported(id blob.ID) bool {
	for _, d := range c.res.DamagedSnapshots {
		if d.ID == id {
			return true
		}
	}
	return false
}

// displayPath names a path inside a snapshot for messages.
func displayPath(p string) string {
	if p == "" {
		return "the snapshot's root"
	}
	return p
}

func (c *checker) errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.res.Errors = append(c.res.Errors, fmt.Sprintf(format, args...))
}

// checkIndex loads every index file on its own (so a damaged one is named)
// and checks that indexed packs exist.
func (c *checker) checkIndex(ctx context.Context) error {
	var ids []blob.ID
	if err := c.repo.List(ctx, backend.IndexFile, func(id blob.ID, _ int64) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return fmt.Errorf("check: list index files: %w", err)
	}
	c.res.IndexFiles = len(ids)
	missing := make(map[blob.ID]bool)
	files := make([]*index.File, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, id := range ids {
		g.Go(func() error {
			f, err := c.repo.LoadIndexFile(gctx, id)
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				c.errorf("index file %s is unreadable: %v (mbackup repair index rebuilds the index from the packs)", id.Short(), err)
				return nil
			}
			files[i] = f
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Files superseded by another one are leftovers of a prune, ignored by
	// every reader; prune deletes them.
	superseded := blob.NewSet()
	for _, f := range files {
		if f != nil {
			for _, id := range f.Supersedes {
				superseded.Insert(id)
			}
		}
	}
	nsup := 0
	for i, id := range ids {
		f := files[i]
		if f == nil {
			continue
		}
		if superseded.Has(id) {
			nsup++
			continue
		}
		func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, p := range f.Packs {
				size, ok := c.packs[p.ID]
				if !ok {
					missing[p.ID] = true
					continue
				}
				for _, b := range p.Blobs {
					if int64(b.Offset)+int64(b.Length) > size {
						c.res.Errors = append(c.res.Errors, fmt.Sprintf("index file %s: blob %s extends past the end of pack %s", id.Short(), b.ID.Short(), p.ID.Short()))
					}
					c.indexedIn[p.ID] = append(c.indexedIn[p.ID], b.ID)
				}
			}
		}()
	}
	if nsup > 0 {
		c.res.Notes = append(c.res.Notes, fmt.Sprintf("%d superseded index files are left over (ignored; prune removes them)", nsup))
	}
	for p := range missing {
		c.errorf("pack %s is indexed but missing from storage", p.Short())
		c.res.DamagedPacks = append(c.res.DamagedPacks, p)
	}
	if err := c.repo.LoadIndex(ctx); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	st := c.repo.IndexStats()
	c.res.Blobs = st.Blobs
	for p := range c.packs {
		if _, ok := c.indexedIn[p]; !ok {
			c.res.UnindexedPacks++
		}
	}
	if c.res.UnindexedPacks > 0 {
		c.res.Notes = append(c.res.Notes, fmt.Sprintf("%d packs are not in any index (left by an interrupted backup or prune; prune removes them)", c.res.UnindexedPacks))
	}
	return nil
}

// checkSnapshots walks every snapshot. With damaged == nil it checks that
// referenced blobs are indexed and available; otherwise it only looks for
// references to damaged blobs. It returns the set of referenced blobs.
func (c *checker) checkSnapshots(ctx context.Context, sns []*engine.Snapshot, damaged blob.Set) (blob.Set, error) {
	referenced := blob.NewSet()
	// problem[tree] is the first problem found below that tree ("" = ok).
	problem := make(map[blob.ID]string)
	missingPacks := blob.NewSet(c.res.DamagedPacks...)
	var walk func(id blob.ID, p string) (string, error)
	walk = func(id blob.ID, p string) (string, error) {
		if msg, ok := problem[id]; ok {
			return msg, nil
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		referenced.Insert(id)
		if damaged != nil && damaged.Has(id) {
			problem[id] = fmt.Sprintf("tree of %s is damaged", displayPath(p))
			return problem[id], nil
		}
		if _, ok := c.repo.Lookup(id); !ok && c.inMarked(ctx, id) {
			problem[id] = ""
			return "", nil
		}
		t, err := c.repo.LoadTree(ctx, id)
		if err != nil {
			problem[id] = fmt.Sprintf("tree of %s unreadable: %v", displayPath(p), err)
			return problem[id], nil
		}
		if damaged == nil {
			c.res.Trees++
		}
		msg := ""
		for _, n := range t.Nodes {
			np := path.Join(p, n.Name)
			switch n.Type {
			case tree.Dir:
				m, err := walk(*n.Subtree, np)
				if err != nil {
					return "", err
				}
				if msg == "" {
					msg = m
				}
			case tree.File:
				for _, b := range n.Content {
					referenced.Insert(b)
					if msg != "" {
						continue
					}
					if damaged != nil {
						if damaged.Has(b) {
							loc, _ := c.repo.Lookup(b)
							msg = fmt.Sprintf("%s needs blob %s in damaged pack %s", np, b.Short(), loc.Pack.Short())
						}
						continue
					}
					loc, ok := c.repo.Lookup(b)
					switch {
					case !ok && c.inMarked(ctx, b):
					case !ok:
						msg = fmt.Sprintf("%s needs blob %s, which is in no index", np, b.Short())
					case missingPacks.Has(loc.Pack):
						msg = fmt.Sprintf("%s needs pack %s, which is missing", np, loc.Pack.Short())
					}
				}
			}
		}
		problem[id] = msg
		return msg, nil
	}
	for _, sn := range sns {
		msg, err := walk(sn.Tree, "")
		if err != nil {
			return nil, err
		}
		if msg != "" && !c.reported(sn.ID()) {
			c.errorf("snapshot %s (%s, %s) is damaged: %s", sn.ID().Short(), sn.Source, sn.Time.Format(time.RFC3339), msg)
			c.res.DamagedSnapshots = append(c.res.DamagedSnapshots, DamagedSnapshot{ID: sn.ID(), Source: sn.Source, Time: sn.Time, Reason: msg})
		}
	}
	return referenced, nil
}

// readData downloads the selected packs and verifies them; it returns the
// blobs found damaged.
func (c *checker) readData(ctx context.Context) (blob.Set, error) {
	var ids []blob.ID
	for id := range c.packs {
		ids = append(ids, id)
	}
	blob.SortIDs(ids)
	if s := c.opts.Subset; s != nil {
		var sel []blob.ID
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		for _, id := range ids {
			if s.T > 0 && int(id[0])%s.T == s.N-1 || s.T == 0 && rng.Float64()*100 < s.Percent {
				sel = append(sel, id)
			}
		}
		ids = sel
	}
	damaged := blob.NewSet()
	var done int
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Workers)
	for _, id := range ids {
		g.Go(func() error {
			bad, n, err := c.readPack(gctx, id)
			if err != nil {
				return err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			c.res.PacksRead++
			c.res.BytesRead += n
			for _, b := range bad {
				damaged.Insert(b)
			}
			done++
			if c.opts.Progress != nil {
				c.opts.Progress(done, len(ids))
			}
			return nil
		})
	}
	return damaged, g.Wait()
}

// readPack verifies one pack and returns its damaged blobs.
func (c *checker) readPack(ctx context.Context, id blob.ID) ([]blob.ID, int64, error) {
	data, err := backend.ReadAll(ctx, c.repo.Backend(), backend.Handle{Type: backend.PackFile, Name: id.String()})
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		c.damage(id, fmt.Sprintf("pack %s cannot be read: %v", id.Short(), err))
		return c.indexedBlobs(id), 0, nil
	}
	n := int64(len(data))
	if got, err := pack.ID(data); err != nil || got != id {
		c.damage(id, fmt.Sprintf("pack %s is damaged: its header does not match its name", id.Short()))
	}
	hdr, err := pack.ParseHeader(c.repo.Key(), data)
	if err != nil {
		c.damage(id, fmt.Sprintf("pack %s is damaged: header: %v", id.Short(), err))
		return c.indexedBlobs(id), n, nil
	}
	inPack := make(map[blob.ID]pack.Blob, len(hdr))
	var bad []blob.ID
	var buf []byte
	for _, b := range hdr {
		inPack[b.ID] = b
		plain, err := c.repo.OpenBlobChecked(b, data[b.Offset:b.Offset+b.Length], buf)
		if err != nil {
			c.damage(id, fmt.Sprintf("pack %s is damaged: %v", id.Short(), err))
			bad = append(bad, b.ID)
			continue
		}
		buf = plain
	}
	for _, b := range c.indexedBlobs(id) {
		if _, ok := inPack[b]; !ok {
			c.damage(id, fmt.Sprintf("pack %s lacks blob %s that the index places there", id.Short(), b.Short()))
			bad = append(bad, b)
		}
	}
	return bad, n, nil
}

func (c *checker) indexedBlobs(id blob.ID) []blob.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.indexedIn[id]
}

func (c *checker) damage(id blob.ID, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.res.Errors = append(c.res.Errors, msg)
	for _, p := range c.res.DamagedPacks {
		if p == id {
			return
		}
	}
	c.res.DamagedPacks = append(c.res.DamagedPacks, id)
}

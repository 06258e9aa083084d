package restorer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/archiver"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/index"
	"github.com/mbackup/mbackup/engine/tree"
)

// TempMarker is part of every temporary name a restore creates; leftovers
// of a crashed restore are recognised by it and removed by the next
// restore (and left out of backups).
const TempMarker = ".mbackup-tmp-"

// Options tune a restore.
type Options struct {
	// Delete removes entries the snapshot does not have (restore in place).
	Delete bool
	// Exclude lists patterns (as in archiver.Matcher) of paths neither
	// written nor deleted.
	Exclude []string
	// Workers is the number of packs fetched at once (default 4).
	Workers int
	// Verify reads every written file back before anything is committed
	// and checks it against the snapshot: each blob's bytes against a
	// CRC-32C of its plaintext taken when it was decrypted and
	// authenticated, and each file's length.
	Verify bool
	// DryRun plans and reports without changing anything.
	DryRun bool
	// Progress, if set, is called with running totals.
	Progress func(Progress)
}

// Progress reports the staging phase.
type Progress struct {
	BytesDone, BytesTotal int64
	FilesDone, FilesTotal int64
}

// Plan is what a restore does (or did).
type Plan struct {
	Write  []string // files and links written, relative paths
	Delete []string // entries removed
	// Unchanged counts files left alone because their content matched.
	Unchanged int
	Files     int
	Dirs      int
	Symlinks  int
	// Bytes is the total size of the snapshot's files; WriteBytes of the
	// files to write; FetchBytes what is downloaded for them.
	Bytes, WriteBytes, FetchBytes int64
	FetchPacks                    int
}

// Stats reports a finished restore.
type Stats struct {
	Plan
	Verified int
	Duration time.Duration
}

// fileWrite is one file to write. Restores of many files hold one per
// file until the end, so it keeps no full paths of its own: stageDir is
// shared with the folder's other entries and paths are built when used.
type fileWrite struct {
	rel       string     // path in the snapshot's tree, also the key of desired
	stageDir  string     // the staged folder the file is built in, or ""
	temp      string     // else its temporary name in an existing folder
	node      *tree.Node // name, size, content and metadata
	remaining atomic.Int64

	// The first worker with a blob for the file creates it; a file's
	// blobs can sit in packs that different workers fetch.
	create    sync.Once
	createErr error
}

// open opens the staged file for writing, creating it on first use.
func (w *fileWrite) open() (*os.File, error) {
	var f *os.File
	w.create.Do(func() {
		f, w.createErr = os.OpenFile(w.stage(), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	})
	if f != nil || w.createErr != nil {
		return f, w.createErr
	}
	return os.OpenFile(w.stage(), os.O_WRONLY, 0)
}

// stage returns the path the file is built at.
func (w *fileWrite) stage() string {
	if w.temp != "" {
		return w.temp
	}
	return w.stageDir + string(os.PathSeparator) + w.node.Name
}

type rename struct {
	from, to string
	dir      bool // a staged folder: whatever is at to is replaced
}

type restorer struct {
	repo    *engine.Repository
	target  string
	opts    Options
	exclude *archiver.Matcher

	existing map[string]fs.FileInfo
	desired  map[string]bool
	plan     Plan

	writes      []*fileWrite
	links       []*linkWrite
	candidates  []*fileWrite // same size: hash before deciding
	renames     []rename
	keepDirs    []dirMeta // existing folders whose metadata is restored
	stagedDirs  []dirMeta // staged folders
	unchanged   []*fileWrite
	staleTemps  []string
	stagedRoots []string // temporary paths to remove on failure
	created     bool     // the target folder was created by this restore
	fetch       []*packNeeds
	dirTimes    map[string][2]time.Time
}

type linkWrite struct {
	rel, stage, final string
	node              *tree.Node
	temp              bool
}

type dirMeta struct {
	abs  string
	node *tree.Node
}

// Restore writes the tree root into target. See the package documentation
// for the phases and the guarantees.
func Restore(ctx context.Context, repo *engine.Repository, root blob.ID, target string, opts Options) (*Stats, error) {
	st, err := Prepare(ctx, repo, root, target, opts)
	if err != nil || opts.DryRun {
		if st != nil {
			return st.Stats, err
		}
		return nil, err
	}
	if err := st.Commit(); err != nil {
		return nil, err
	}
	return st.Stats, nil
}

// Staged is a restore whose data is staged and verified but not yet
// visible: Commit makes it so, Abort removes it. Callers that must switch
// several things at once (a database and its files) prepare all of them
// first and commit last.
type Staged struct {
	*Stats
	r     *restorer
	start time.Time
	done  bool
}

// Prepare runs the plan and stage phases (and verification). With
// Options.DryRun it only plans; the result must not be committed.
func Prepare(ctx context.Context, repo *engine.Repository, root blob.ID, target string, opts Options) (*Staged, error) {
	start := time.Now()
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	m, err := archiver.NewMatcher(opts.Exclude)
	if err != nil {
		return nil, err
	}
	target, err = filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	r := &restorer{repo: repo, target: target, opts: opts, exclude: m,
		existing: make(map[string]fs.FileInfo), desired: make(map[string]bool)}

	if err := r.scan(); err != nil {
		return nil, err
	}
	rootTree, err := repo.LoadTree(ctx, root)
	if err != nil {
		return nil, err
	}
	if err := r.planTree(ctx, rootTree, "", target, ""); err != nil {
		return nil, err
	}
	if err := r.checkCandidates(ctx); err != nil {
		return nil, err
	}
	r.planDeletes()
	if err := r.planFetch(); err != nil {
		return nil, err
	}
	// The plan holds what the next phases need; the trees' packs and the
	// scan of the target would only weigh on a restore of many files.
	repo.DropTreeCache()
	r.existing, r.desired = nil, nil
	st := &Staged{Stats: &Stats{Plan: r.plan}, r: r, start: start}
	if opts.DryRun {
		st.Duration = time.Since(start)
		st.done = true
		return st, nil
	}
	if err := r.stage(ctx); err != nil {
		r.cleanup()
		return nil, err
	}
	// The staged data goes to disk while it is read back: verification
	// reads the page cache, and both must be done before the commit.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return syncFS(r.target) })
	if opts.Verify {
		g.Go(func() error {
			n, err := r.verify(gctx)
			st.Verified = n
			return err
		})
	}
	if err := g.Wait(); err != nil {
		r.cleanup()
		return nil, err
	}
	return st, nil
}

// Commit moves the staged data into place.
func (s *Staged) Commit() error {
	if s.done {
		return errors.New("restore already committed, aborted or planned only")
	}
	s.done = true
	if err := s.r.commit(); err != nil {
		return fmt.Errorf("commit restore into %s: %w (run the restore again to finish it)", s.r.target, err)
	}
	s.Duration = time.Since(s.start)
	return nil
}

// Abort removes the staged data, leaving the target as it was.
func (s *Staged) Abort() {
	if s.done {
		return
	}
	s.done = true
	s.r.cleanup()
}

// scan records what the target holds, skipping excluded paths.
func (r *restorer) scan() error {
	fi, err := os.Lstat(r.target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore target %s: %w", r.target, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("restore target %s is not a folder", r.target)
	}
	return filepath.WalkDir(r.target, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("scan %s: %w", p, err)
		}
		if p == r.target {
			return nil
		}
		rel := filepath.ToSlash(p[len(r.target)+1:])
		if strings.Contains(d.Name(), TempMarker) {
			r.staleTemps = append(r.staleTemps, p)
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if r.exclude.Match(rel) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("scan %s: %w", p, err)
		}
		r.existing[rel] = info
		return nil
	})
}

func tempName(dir, name string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(dir, "."+name+TempMarker+hex.EncodeToString(b[:]))
}

// planTree decides what to do with each entry of t. stageDir is "" when
// the folder exists in the target, else the path it is being built at.
func (r *restorer) planTree(ctx context.Context, t *tree.Tree, rel, finalDir, stageDir string) error {
	for _, n := range t.Nodes {
		crel := path.Join(rel, n.Name)
		if r.exclude.Match(crel) {
			continue
		}
		if len(r.existing) > 0 { // else nothing can need deleting
			r.desired[crel] = true
		}
		final := filepath.Join(finalDir, n.Name)
		var ex fs.FileInfo
		if stageDir == "" {
			ex = r.existing[crel]
		}
		switch n.Type {
		case tree.Dir:
			r.plan.Dirs++
			sub, err := r.repo.LoadTree(ctx, *n.Subtree)
			if err != nil {
				return fmt.Errorf("restore %s: %w", crel, err)
			}
			switch {
			case stageDir != "":
				p := filepath.Join(stageDir, n.Name)
				r.stagedDirs = append(r.stagedDirs, dirMeta{p, n})
				if err := r.planTree(ctx, sub, crel, final, p); err != nil {
					return err
				}
			case ex != nil && ex.IsDir():
				r.keepDirs = append(r.keepDirs, dirMeta{final, n})
				if err := r.planTree(ctx, sub, crel, final, ""); err != nil {
					return err
				}
			default:
				p := tempName(finalDir, n.Name)
				r.stagedDirs = append(r.stagedDirs, dirMeta{p, n})
				r.renames = append(r.renames, rename{from: p, to: final, dir: true})
				r.stagedRoots = append(r.stagedRoots, p)
				if err := r.planTree(ctx, sub, crel, final, p); err != nil {
					return err
				}
			}
		case tree.File:
			r.plan.Files++
			r.plan.Bytes += int64(n.Size)
			w := &fileWrite{rel: crel, node: n}
			switch {
			case stageDir != "":
				w.stageDir = stageDir
				r.addWrite(w)
			case ex != nil && ex.Mode().IsRegular() && ex.Size() == int64(n.Size):
				r.candidates = append(r.candidates, w)
			default:
				r.addWrite(w)
			}
		case tree.Symlink:
			r.plan.Symlinks++
			l := &linkWrite{rel: crel, final: final, node: n}
			switch {
			case stageDir != "":
				l.stage = filepath.Join(stageDir, n.Name)
			case ex != nil && ex.Mode()&fs.ModeSymlink != 0:
				if cur, err := os.Readlink(final); err == nil && cur == n.LinkTarget {
					continue
				}
				fallthrough
			default:
				l.stage, l.temp = tempName(finalDir, n.Name), true
				r.stagedRoots = append(r.stagedRoots, l.stage)
				r.renames = append(r.renames, rename{from: l.stage, to: final, dir: ex != nil && ex.IsDir()})
			}
			r.links = append(r.links, l)
			r.plan.Write = append(r.plan.Write, crel)
		}
	}
	return nil
}

// addWrite schedules w; files in existing folders get a temporary name.
func (r *restorer) addWrite(w *fileWrite) {
	if w.stageDir == "" {
		final := r.abs(w.rel)
		w.temp = tempName(filepath.Dir(final), w.node.Name)
		ex := r.existing[w.rel]
		r.renames = append(r.renames, rename{from: w.temp, to: final, dir: ex != nil && ex.IsDir()})
		r.stagedRoots = append(r.stagedRoots, w.temp)
	}
	r.writes = append(r.writes, w)
	r.plan.Write = append(r.plan.Write, w.rel)
	r.plan.WriteBytes += int64(w.node.Size)
}

// checkCandidates hashes same-size files in parallel; those that differ
// are scheduled for writing.
func (r *restorer) checkCandidates(ctx context.Context) error {
	if len(r.candidates) == 0 {
		return nil
	}
	differ := make([]bool, len(r.candidates))
	g, ctx := errgroup.WithContext(ctx)
	workers := r.repo.Workers()
	next := atomic.Int64{}
	for range workers {
		g.Go(func() error {
			h := newHasher(r.repo)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(r.candidates) || ctx.Err() != nil {
					return ctx.Err()
				}
				ok, err := h.matches(r.abs(r.candidates[i].rel), r.candidates[i].node.Content)
				differ[i] = err != nil || !ok
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, w := range r.candidates {
		if differ[i] {
			r.addWrite(w)
		} else {
			r.plan.Unchanged++
			r.unchanged = append(r.unchanged, w)
		}
	}
	return nil
}

func (r *restorer) planDeletes() {
	if !r.opts.Delete {
		return
	}
	var rels []string
	for rel := range r.existing {
		if r.desired[rel] {
			continue
		}
		parent := path.Dir(rel)
		if parent != "." && !r.desired[parent] {
			continue // removed with its parent
		}
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	r.plan.Delete = rels
}

// packNeeds lists the blobs to fetch from one pack and where they go.
type packNeeds struct {
	pack  blob.ID
	blobs []neededBlob
}

type neededBlob struct {
	loc     index.Location
	id      blob.ID
	targets []target
	sum     uint32 // CRC-32C of the plaintext, for Options.Verify
}

type target struct {
	w      *fileWrite
	offset int64
}

func (r *restorer) planFetch() error {
	byBlob := make(map[blob.ID]*neededBlob)
	byPack := make(map[blob.ID]*packNeeds)
	for _, w := range r.writes {
		var off int64
		for _, id := range w.node.Content {
			nb, ok := byBlob[id]
			if !ok {
				loc, found := r.repo.Lookup(id)
				if !found {
					return fmt.Errorf("restore %s: blob %s: %w", w.rel, id.Short(), engine.ErrBlobNotFound)
				}
				nb = &neededBlob{loc: loc, id: id}
				byBlob[id] = nb
				pn := byPack[loc.Pack]
				if pn == nil {
					pn = &packNeeds{pack: loc.Pack}
					byPack[loc.Pack] = pn
					r.plan.FetchPacks++
				}
				r.plan.FetchBytes += int64(loc.Length)
			}
			nb.targets = append(nb.targets, target{w: w, offset: off})
			w.remaining.Add(1)
			off += int64(nb.loc.RawLength)
		}
		if off != int64(w.node.Size) {
			return fmt.Errorf("restore %s: snapshot lists %d bytes of content for a file of %d bytes", w.rel, off, w.node.Size)
		}
	}
	for _, nb := range byBlob {
		pn := byPack[nb.loc.Pack]
		pn.blobs = append(pn.blobs, *nb)
	}
	r.fetch = make([]*packNeeds, 0, len(byPack))
	for _, pn := range byPack {
		slices.SortFunc(pn.blobs, func(a, b neededBlob) int { return int(a.loc.Offset) - int(b.loc.Offset) })
		r.fetch = append(r.fetch, pn)
	}
	slices.SortFunc(r.fetch, func(a, b *packNeeds) int { return a.pack.Compare(b.pack) })
	return nil
}

package archiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/restic/chunker"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/tree"
)

// Options tune a run.
type Options struct {
	// Exclude lists patterns of paths to leave out (see Matcher).
	Exclude []string
	// Parent is the root tree of the previous snapshot of the same folder;
	// unchanged files are taken from it without being read.
	Parent *blob.ID
	// Workers is the number of files read at once (default: twice the
	// repository's CPU workers, since reading also waits on the disk).
	Workers int
	// Warn receives non-fatal problems: vanished, changed or unreadable
	// entries. The path is relative to the archived folder.
	Warn func(rel string, err error)
	// Progress, if set, is called with running totals from several
	// goroutines; it must be cheap and safe for concurrent use.
	Progress func(Stats)
}

// Stats summarises a run.
type Stats struct {
	Files, Dirs, Symlinks int64
	// Bytes is the total size of the files in the snapshot.
	Bytes int64
	// ReadBytes is what was actually read; unchanged files are skipped.
	ReadBytes int64
	Unchanged int64
	NewBlobs  int64
	// Stored is the bytes added to the repository (compressed, sealed).
	Stored   int64
	Warnings int64
	Duration time.Duration
}

type archiver struct {
	repo    *engine.Repository
	root    string
	opts    Options
	exclude *Matcher
	jobs    chan *fileJob
	walkers chan struct{} // folders walked at once besides the first
	stats   struct {
		files, dirs, symlinks, bytes, read, unchanged, newBlobs, stored, warnings atomic.Int64
	}
}

type fileJob struct {
	abs, rel string
	node     *tree.Node
	wg       *sync.WaitGroup
	err      *error
	errMu    *sync.Mutex
}

// Archive stores the folder root and returns the ID of its tree.
func Archive(ctx context.Context, repo *engine.Repository, root string, opts Options) (blob.ID, Stats, error) {
	start := time.Now()
	m, err := NewMatcher(opts.Exclude)
	if err != nil {
		return blob.ID{}, Stats{}, err
	}
	if opts.Workers <= 0 {
		opts.Workers = 2 * repo.Workers()
	}
	fi, err := os.Stat(root)
	if err != nil {
		return blob.ID{}, Stats{}, fmt.Errorf("archive %s: %w", root, err)
	}
	if !fi.IsDir() {
		return blob.ID{}, Stats{}, fmt.Errorf("archive %s: not a folder", root)
	}
	a := &archiver{repo: repo, root: root, opts: opts, exclude: m, jobs: make(chan *fileJob, opts.Workers),
		walkers: make(chan struct{}, opts.Workers)}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var workers sync.WaitGroup
	for range opts.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			a.worker(ctx)
		}()
	}
	var parent *tree.Tree
	if opts.Parent != nil {
		if parent, err = repo.LoadTree(ctx, *opts.Parent); err != nil {
			a.warn("", fmt.Errorf("parent snapshot unreadable, reading every file: %w", err))
			parent = nil
		}
	}
	id, err := a.saveDir(ctx, root, "", parent)
	close(a.jobs)
	workers.Wait()
	st := a.snapshotStats()
	st.Duration = time.Since(start)
	if err != nil {
		return blob.ID{}, st, err
	}
	return id, st, nil
}

func (a *archiver) snapshotStats() Stats {
	s := &a.stats
	return Stats{
		Files: s.files.Load(), Dirs: s.dirs.Load(), Symlinks: s.symlinks.Load(),
		Bytes: s.bytes.Load(), ReadBytes: s.read.Load(), Unchanged: s.unchanged.Load(),
		NewBlobs: s.newBlobs.Load(), Stored: s.stored.Load(), Warnings: s.warnings.Load(),
	}
}

func (a *archiver) progress() {
	if a.opts.Progress != nil {
		a.opts.Progress(a.snapshotStats())
	}
}

func (a *archiver) warn(rel string, err error) {
	a.stats.warnings.Add(1)
	if a.opts.Warn != nil {
		a.opts.Warn(rel, err)
	}
}

// saveDir stores the folder abs (rel from the root) and returns its tree.
func (a *archiver) saveDir(ctx context.Context, abs, rel string, parent *tree.Tree) (blob.ID, error) {
	if err := ctx.Err(); err != nil {
		return blob.ID{}, err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return blob.ID{}, fmt.Errorf("read folder %s: %w", displayPath(rel), err)
	}
	t := &tree.Tree{Nodes: make([]*tree.Node, 0, len(entries))}
	var (
		wg      sync.WaitGroup // files queued to the workers
		subs    sync.WaitGroup // subfolders walked by other goroutines
		errMu   sync.Mutex
		fileErr error // the first storage error of a file or subfolder
	)
	for _, e := range entries {
		name := e.Name()
		crel := path.Join(rel, name)
		if a.exclude.Match(crel) || !tree.ValidName(name) {
			continue
		}
		cabs := filepath.Join(abs, name)
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				a.warn(crel, errors.New("vanished before it could be read"))
			} else {
				a.warn(crel, err)
			}
			continue
		}
		node := nodeFromInfo(name, fi)
		var pnode *tree.Node
		if parent != nil {
			pnode = parent.Find(name)
		}
		switch {
		case fi.Mode().IsRegular():
			a.stats.files.Add(1)
			a.stats.bytes.Add(fi.Size())
			if a.unchanged(node, pnode) {
				node.Content = pnode.Content
				a.stats.unchanged.Add(1)
				break
			}
			wg.Add(1)
			job := &fileJob{abs: cabs, rel: crel, node: node, wg: &wg, err: &fileErr, errMu: &errMu}
			select {
			case a.jobs <- job:
			case <-ctx.Done():
				wg.Done()
				wg.Wait()
				subs.Wait()
				return blob.ID{}, ctx.Err()
			}
		case fi.IsDir():
			// A subfolder is walked by a goroutine of its own while one is
			// free, else by this one: with one walker, each folder's
			// files had to be saved before the next folder was read, and
			// moodledata's thousands of one-file folders were read one
			// disk access after the other.
			select {
			case a.walkers <- struct{}{}:
				subs.Add(1)
				go func() {
					defer func() { <-a.walkers; subs.Done() }()
					if err := a.saveSubdir(ctx, cabs, crel, node, pnode); err != nil {
						errMu.Lock()
						if fileErr == nil {
							fileErr = err
						}
						errMu.Unlock()
					}
				}()
			default:
				if err := a.saveSubdir(ctx, cabs, crel, node, pnode); err != nil {
					subs.Wait()
					wg.Wait()
					return blob.ID{}, err
				}
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(cabs)
			if err != nil {
				a.warn(crel, err)
				continue
			}
			node.LinkTarget = target
			a.stats.symlinks.Add(1)
		default:
			a.warn(crel, fmt.Errorf("skipped: unsupported file type %v", fi.Mode().Type()))
			continue
		}
		t.Nodes = append(t.Nodes, node)
	}
	wg.Wait()
	subs.Wait()
	if fileErr != nil {
		return blob.ID{}, fileErr
	}
	kept := t.Nodes[:0]
	for _, n := range t.Nodes {
		if (n.Type == tree.File && n.Size == dropped) || (n.Type == tree.Dir && n.Subtree == nil) {
			continue
		}
		kept = append(kept, n)
	}
	t.Nodes = kept
	t.Sort()
	saved, err := a.repo.SaveTree(ctx, t)
	if err != nil {
		return blob.ID{}, fmt.Errorf("save tree of %s: %w", displayPath(rel), err)
	}
	if !saved.Known {
		a.stats.newBlobs.Add(1)
		a.stats.stored.Add(int64(saved.Stored))
	}
	a.progress()
	return saved.ID, nil
}

// saveSubdir stores the folder abs as node's subtree, pnode being its
// node in the parent snapshot. A folder that vanished or cannot be read is
// a warning, and node keeps no subtree (the caller drops it).
func (a *archiver) saveSubdir(ctx context.Context, abs, rel string, node, pnode *tree.Node) error {
	var ptree *tree.Tree
	if pnode != nil && pnode.Type == tree.Dir && pnode.Subtree != nil {
		var err error
		if ptree, err = a.repo.LoadTree(ctx, *pnode.Subtree); err != nil {
			a.warn(rel, fmt.Errorf("parent tree unreadable, reading the folder again: %w", err))
			ptree = nil
		}
	}
	id, err := a.saveDir(ctx, abs, rel, ptree)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)) {
			a.warn(rel, err)
			return nil
		}
		return err
	}
	node.Subtree = &id
	a.stats.dirs.Add(1)
	return nil
}

// dropped marks a file node whose file vanished; no real file has this
// size.
const dropped = ^uint64(0)

func displayPath(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// unchanged reports whether the file can be taken from the parent tree.
func (a *archiver) unchanged(n, p *tree.Node) bool {
	if p == nil || p.Type != tree.File || p.Size != n.Size || !p.ModTime.Equal(n.ModTime) || p.Inode != n.Inode {
		return false
	}
	if n.Size > 0 && len(p.Content) == 0 {
		return false
	}
	for _, id := range p.Content {
		if !a.repo.HasBlob(id) {
			return false
		}
	}
	return true
}

func nodeFromInfo(name string, fi fs.FileInfo) *tree.Node {
	n := &tree.Node{Name: name, Mode: fi.Mode(), ModTime: fi.ModTime().UTC()}
	switch {
	case fi.Mode().IsRegular():
		n.Type = tree.File
		n.Size = uint64(fi.Size())
	case fi.IsDir():
		n.Type = tree.Dir
	case fi.Mode()&fs.ModeSymlink != 0:
		n.Type = tree.Symlink
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		n.UID, n.GID, n.Inode = st.Uid, st.Gid, st.Ino
	}
	return n
}

// workerState is what each worker reuses from file to file.
type workerState struct {
	small   []byte // whole small files
	chunk   []byte // one chunk of a large file
	chunker *chunker.Chunker
}

func (a *archiver) worker(ctx context.Context) {
	cfg := a.repo.Config()
	// The chunk buffer is allocated by the first large file; most
	// moodledata files are one small blob.
	ws := &workerState{
		small:   make([]byte, cfg.MinChunk+1),
		chunker: a.repo.Chunker(nil),
	}
	for job := range a.jobs {
		err := a.saveFile(ctx, job, ws)
		if err != nil {
			job.errMu.Lock()
			if *job.err == nil {
				*job.err = err
			}
			job.errMu.Unlock()
		}
		job.wg.Done()
	}
}

// saveFile reads one file and fills in its node's content. Problems with
// the file itself become warnings; storage errors are returned.
func (a *archiver) saveFile(ctx context.Context, job *fileJob, ws *workerState) error {
	f, err := os.Open(job.abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = errors.New("vanished before it could be read")
		}
		a.warn(job.rel, err)
		job.node.Size = dropped
		return nil
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		a.warn(job.rel, err)
		job.node.Size = dropped
		return nil
	}
	var (
		content []blob.ID
		total   int64
	)
	save := func(data []byte) error {
		saved, err := a.repo.SaveBlob(ctx, blob.Data, data)
		if err != nil {
			return fmt.Errorf("save %s: %w", job.rel, err)
		}
		content = append(content, saved.ID)
		total += int64(len(data))
		a.stats.read.Add(int64(len(data)))
		if !saved.Known {
			a.stats.newBlobs.Add(1)
			a.stats.stored.Add(int64(saved.Stored))
		}
		return nil
	}

	// Small files are one blob: read them whole, one byte more than the
	// chunking threshold to notice files that grew since the lstat.
	head := ws.small
	n, rerr := io.ReadFull(f, head)
	switch {
	case rerr == nil:
		// Larger than one chunk: cut it, starting with what was read.
		a.repo.ResetChunker(ws.chunker, io.MultiReader(bytes.NewReader(head[:n]), f))
		for {
			ch, err := ws.chunker.Next(ws.chunk)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				a.warn(job.rel, fmt.Errorf("read failed, file skipped: %w", err))
				job.node.Size = dropped
				return nil
			}
			if err := save(ch.Data); err != nil {
				return err
			}
			ws.chunk = ch.Data[:0]
		}
	case errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, io.EOF):
		if n > 0 {
			if err := save(head[:n]); err != nil {
				return err
			}
		}
	default:
		a.warn(job.rel, fmt.Errorf("read failed, file skipped: %w", rerr))
		job.node.Size = dropped
		return nil
	}

	after, err := f.Stat()
	if err == nil && (after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime())) {
		a.warn(job.rel, fmt.Errorf("changed while being read (stored %d bytes; the next backup reads it again)", total))
	}
	job.node.Content = content
	job.node.Size = uint64(total)
	// Record the time seen before reading: if the file changed meanwhile
	// the next run sees a different time and reads it again.
	job.node.ModTime = before.ModTime().UTC()
	a.progress()
	return nil
}

package restorer

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/tree"
)

// maxGap is the largest run of unneeded bytes read to avoid a second
// request to the same pack; maxRead bounds one request, and so the buffer
// each worker holds.
const (
	maxGap  = 1 << 20
	maxRead = 4 << 20
	// maxOpen bounds the files a worker keeps open (file descriptor limits
	// are often 1024 per process).
	maxOpen = 64
)

func (r *restorer) stage(ctx context.Context) error {
	for _, p := range r.staleTemps {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove leftover %s: %w", p, err)
		}
	}
	r.saveDirTimes()
	if _, err := os.Lstat(r.target); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(r.target, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", r.target, err)
		}
		r.created = true
	}
	for _, d := range r.stagedDirs {
		if err := os.Mkdir(d.abs, 0o700); err != nil {
			return fmt.Errorf("stage folder: %w", err)
		}
	}
	// Files with content are created by the workers that fetch it, in
	// parallel and while other packs are read; empty files are made here.
	for _, w := range r.writes {
		if w.remaining.Load() > 0 {
			continue
		}
		f, err := w.open()
		if err == nil {
			err = fsetMeta(f, w.node)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("stage %s: %w", w.rel, err)
		}
	}
	if err := r.fetchAll(ctx); err != nil {
		return err
	}
	for _, l := range r.links {
		if err := os.Symlink(l.node.LinkTarget, l.stage); err != nil {
			return fmt.Errorf("stage %s: %w", l.rel, err)
		}
		if err := setMeta(l.stage, l.node); err != nil {
			return fmt.Errorf("stage %s: %w", l.rel, err)
		}
	}
	// Deepest folders first: setting a folder's time must come after the
	// last change inside it.
	for _, d := range slices.Backward(r.stagedDirs) {
		if err := setMeta(d.abs, d.node); err != nil {
			return fmt.Errorf("stage folder: %w", err)
		}
	}
	return nil
}

func (r *restorer) fetchAll(ctx context.Context) error {
	var done, files atomic.Int64
	total := r.plan.WriteBytes
	report := func() {
		if r.opts.Progress != nil {
			r.opts.Progress(Progress{BytesDone: done.Load(), BytesTotal: total, FilesDone: files.Load(), FilesTotal: int64(len(r.writes))})
		}
	}
	for _, w := range r.writes {
		if w.remaining.Load() == 0 {
			files.Add(1)
		}
	}
	// Each worker reuses one read buffer and one plaintext buffer.
	bufs := make(chan *fetchBuffers, r.opts.Workers)
	for range r.opts.Workers {
		bufs <- &fetchBuffers{}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Workers)
	for _, pn := range r.fetch {
		g.Go(func() error {
			fb := <-bufs
			defer func() { bufs <- fb }()
			return r.fetchPack(ctx, pn, fb, func(n int64, completed int) {
				done.Add(n)
				files.Add(int64(completed))
				report()
			})
		})
	}
	return g.Wait()
}

type fetchBuffers struct {
	read, plain []byte
}

// fetchPack reads the needed blobs of one pack in as few ranged requests
// as gaps allow and writes them to their files.
func (r *restorer) fetchPack(ctx context.Context, pn *packNeeds, fb *fetchBuffers, progress func(int64, int)) (err error) {
	h := backend.Handle{Type: backend.PackFile, Name: pn.pack.String()}
	// Files stay open while this pack's blobs are written: most files'
	// blobs sit in one pack.
	open := make(map[*fileWrite]*os.File)
	defer func() {
		for _, f := range open {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	for i := 0; i < len(pn.blobs); {
		start := int64(pn.blobs[i].loc.Offset)
		end := start + int64(pn.blobs[i].loc.Length)
		j := i + 1
		for j < len(pn.blobs) && int64(pn.blobs[j].loc.Offset)-end <= maxGap &&
			int64(pn.blobs[j].loc.Offset)+int64(pn.blobs[j].loc.Length)-start <= maxRead {
			end = max(end, int64(pn.blobs[j].loc.Offset)+int64(pn.blobs[j].loc.Length))
			j++
		}
		n := int(end - start)
		if cap(fb.read) < n {
			fb.read = make([]byte, n)
		}
		data, err := backend.ReadAtInto(ctx, r.repo.Backend(), h, start, fb.read[:n])
		if err != nil {
			return fmt.Errorf("fetch pack %s: %w", pn.pack.Short(), err)
		}
		for k := i; k < j; k++ {
			nb := &pn.blobs[k]
			off := int64(nb.loc.Offset) - start
			fb.plain, err = r.repo.OpenBlob(nb.loc.Blob(nb.id), data[off:off+int64(nb.loc.Length)], fb.plain)
			if err != nil {
				return fmt.Errorf("pack %s: %w", pn.pack.Short(), err)
			}
			plain := fb.plain
			if r.opts.Verify {
				nb.sum = crc32.Checksum(plain, castagnoli)
			}
			var written int64
			completed := 0
			for _, t := range nb.targets {
				f := open[t.w]
				if f == nil {
					if len(open) >= maxOpen {
						for w, f := range open {
							if err := f.Close(); err != nil {
								return err
							}
							delete(open, w)
						}
					}
					if f, err = t.w.open(); err != nil {
						return fmt.Errorf("write %s: %w", t.w.rel, err)
					}
					open[t.w] = f
				}
				if _, err := f.WriteAt(plain, t.offset); err != nil {
					return fmt.Errorf("write %s: %w", t.w.rel, err)
				}
				written += int64(len(plain))
				if t.w.remaining.Add(-1) == 0 {
					completed++
					// Nothing writes to the file after this.
					if err := fsetMeta(f, t.w.node); err != nil {
						return fmt.Errorf("write %s: %w", t.w.rel, err)
					}
					// Start writing the finished file to disk now, so
					// that the sync before the commit has less to wait
					// for (a hint: the sync is what guarantees it).
					_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
				}
			}
			progress(written, completed)
		}
		i = j
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// blobSum is what verification knows of a blob: its length and the
// CRC-32C of its plaintext.
type blobSum struct {
	n, sum uint32
}

// verify reads every staged file back and checks it against the snapshot.
// The blobs were authenticated when they were decrypted, so what is left
// to catch is a bad write (a wrong offset, a short or lost write, the
// disk): a CRC of what was written does that at a fraction of the cost of
// hashing everything again with the repository's keyed hash.
func (r *restorer) verify(ctx context.Context) (int, error) {
	sums := make(map[blob.ID]blobSum)
	for _, pn := range r.fetch {
		for _, nb := range pn.blobs {
			sums[nb.id] = blobSum{n: nb.loc.RawLength, sum: nb.sum}
		}
	}
	r.fetch = nil // the plan's largest part is no longer needed
	g, ctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for range r.repo.Workers() {
		g.Go(func() error {
			var buf []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= len(r.writes) {
					return nil
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				w := r.writes[i]
				var err error
				if buf, err = verifyFile(w.stage(), w.node.Content, sums, buf); err != nil {
					return fmt.Errorf("verify %s: %w", w.rel, err)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return len(r.writes), nil
}

var errBadWrite = errors.New("written content does not match the snapshot")

// verifyFile checks that the file at path holds exactly the blobs ids.
func verifyFile(path string, ids []blob.ID, sums map[blob.ID]blobSum, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	for _, id := range ids {
		s, ok := sums[id]
		if !ok {
			return buf, fmt.Errorf("blob %s was not fetched: %w", id.Short(), errBadWrite)
		}
		if cap(buf) < int(s.n) {
			buf = make([]byte, s.n)
		}
		b := buf[:s.n]
		if _, err := io.ReadFull(f, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return buf, fmt.Errorf("file is short: %w", errBadWrite)
			}
			return buf, err
		}
		if crc32.Checksum(b, castagnoli) != s.sum {
			return buf, errBadWrite
		}
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n > 0 {
		return buf, fmt.Errorf("file is longer: %w", errBadWrite)
	}
	return buf, nil
}

// commit moves staged entries into place, deletes what the snapshot lacks
// and restores metadata.
func (r *restorer) commit() error {
	for _, rn := range r.renames {
		if fi, err := os.Lstat(rn.to); err == nil && (rn.dir || fi.IsDir()) {
			if err := os.RemoveAll(rn.to); err != nil {
				return err
			}
		}
		if err := os.Rename(rn.from, rn.to); err != nil {
			return err
		}
	}
	for _, rel := range r.plan.Delete {
		if err := os.RemoveAll(r.abs(rel)); err != nil {
			return err
		}
	}
	for _, w := range r.unchanged {
		if err := fixMeta(r.abs(w.rel), w.node); err != nil {
			return err
		}
	}
	for _, d := range slices.Backward(r.keepDirs) {
		if err := setMeta(d.abs, d.node); err != nil {
			return err
		}
	}
	return syncFS(r.target)
}

func (r *restorer) abs(rel string) string {
	return r.target + string(os.PathSeparator) + rel
}

// saveDirTimes records the times of the existing folders that receive
// temporary entries, so that a failed restore can put them back.
func (r *restorer) saveDirTimes() {
	r.dirTimes = make(map[string][2]time.Time)
	for _, p := range r.stagedRoots {
		dir := filepath.Dir(p)
		if _, ok := r.dirTimes[dir]; ok {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(dir, &st); err == nil {
			r.dirTimes[dir] = [2]time.Time{time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix())}
		}
	}
}

// cleanup removes everything staged, after a failure before commit, and
// puts back the times of the folders it touched.
func (r *restorer) cleanup() {
	for _, p := range r.stagedRoots {
		_ = os.RemoveAll(p)
	}
	if r.created {
		_ = os.RemoveAll(r.target)
	}
	for dir, t := range r.dirTimes {
		_ = os.Chtimes(dir, t[0], t[1])
	}
}

// fsetMeta is setMeta for a regular file open as f.
func fsetMeta(f *os.File, n *tree.Node) error {
	if os.Geteuid() == 0 {
		if err := f.Chown(int(n.UID), int(n.GID)); err != nil {
			return err
		}
	}
	if err := f.Chmod(n.Mode.Perm() | n.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.ModTime.UnixNano()), unix.NsecToTimespec(n.ModTime.UnixNano())}
	return unix.UtimesNanoAt(int(f.Fd()), "", ts, unix.AT_EMPTY_PATH)
}

// setMeta applies mode, owner (when root) and times to p without
// following symlinks.
func setMeta(p string, n *tree.Node) error {
	if os.Geteuid() == 0 {
		if err := os.Lchown(p, int(n.UID), int(n.GID)); err != nil {
			return err
		}
	}
	if n.Type != tree.Symlink {
		if err := os.Chmod(p, n.Mode.Perm()|n.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.ModTime.UnixNano()), unix.NsecToTimespec(n.ModTime.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// fixMeta applies metadata only where it differs, so unchanged files keep
// their ctime when nothing needs changing.
func fixMeta(p string, n *tree.Node) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode() == n.Mode && fi.ModTime().Equal(n.ModTime) {
		if st, ok := fi.Sys().(*unix.Stat_t); !ok || os.Geteuid() != 0 || (st.Uid == n.UID && st.Gid == n.GID) {
			return nil
		}
	}
	return setMeta(p, n)
}

// syncFS flushes the file system holding p, so staged data is on disk
// before anything is renamed into place (one syncfs instead of an fsync
// per file).
func syncFS(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}

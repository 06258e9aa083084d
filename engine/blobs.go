package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/pack"
)

// ErrBlobNotFound says that the index has no entry for a blob.
var ErrBlobNotFound = errors.New("blob not in index")

// Saved reports the outcome of SaveBlob.
type Saved struct {
	ID blob.ID
	// Known is true when the blob was already stored (or being stored)
	// and nothing was added.
	Known bool
	// Stored is the number of bytes the blob added to packs.
	Stored int
}

// SaveBlob stores data as a blob of type t unless a blob with the same ID
// exists, and returns its ID. The blob reaches storage with its pack; it is
// durable only after Flush. SaveBlob is safe for concurrent use and does
// the hashing, compression and encryption in the caller's goroutine, so
// callers get parallelism by calling it from several goroutines.
func (r *Repository) SaveBlob(ctx context.Context, t blob.Type, data []byte) (Saved, error) {
	return r.saveBlob(ctx, t, data, r.enc)
}

func (r *Repository) saveBlob(ctx context.Context, t blob.Type, data []byte, enc *zstd.Encoder) (Saved, error) {
	id := r.key.BlobID(data)
	if !r.idx.reserve(id) {
		return Saved{ID: id, Known: true}, nil
	}
	stored, compressed, release := r.compress(data, enc)
	sp := r.bufs.Get().(*[]byte)
	sealed, err := r.key.SealBlob((*sp)[:0], stored, id)
	release()
	if err != nil {
		r.bufs.Put(sp)
		r.idx.failed([]pack.Blob{{ID: id}})
		return Saved{}, fmt.Errorf("seal blob %s: %w", id.Short(), err)
	}
	err = r.packers[t].add(ctx, r, id, sealed, len(data), compressed)
	n := len(sealed)
	*sp = sealed
	r.bufs.Put(sp)
	if err != nil {
		r.idx.failed([]pack.Blob{{ID: id}})
		return Saved{}, err
	}
	return Saved{ID: id, Stored: n}, nil
}

// compress returns the form to store and whether it is compressed; release
// returns the buffer to the pool once the caller is done with it.
func (r *Repository) compress(data []byte, enc *zstd.Encoder) (stored []byte, compressed bool, release func()) {
	if r.compression() == CompressionOff || len(data) < 256 {
		return data, false, func() {}
	}
	bp := r.bufs.Get().(*[]byte)
	// Room for incompressible data (zstd stores it in raw blocks, a few
	// bytes per 128 KiB) so that EncodeAll does not grow the buffer by
	// steps, copying it each time.
	if need := len(data) + len(data)>>6 + 64; cap(*bp) < need {
		*bp = make([]byte, 0, need)
	}
	out := enc.EncodeAll(data, (*bp)[:0])
	release = func() { *bp = out[:0]; r.bufs.Put(bp) }
	// Keep the raw form unless compression saves at least 1/32: already
	// compressed media would otherwise cost CPU on every restore for
	// nothing.
	if len(out) >= len(data)-len(data)/32 {
		return data, false, release
	}
	return out, true, release
}

// spoolFiles recycles the temporary files packs are assembled in. The
// files are unlinked as soon as they are created, so a crash leaves
// nothing behind. When the backend is a backend.FileStorer (the local
// folder), packs are assembled in its own anonymous files and handed over
// whole, instead of being written a second time by Save.
type spoolFiles struct {
	dir  string
	free chan *os.File

	mu     sync.Mutex
	storer backend.FileStorer // nil: packs are copied with Save
	owned  map[*os.File]bool  // files from storer.TempFile
}

func newSpoolFiles(dir string, n int, be backend.Backend) *spoolFiles {
	p := &spoolFiles{dir: dir, free: make(chan *os.File, n), owned: make(map[*os.File]bool)}
	p.storer, _ = be.(backend.FileStorer)
	return p
}

func (p *spoolFiles) get() (*os.File, error) {
	select {
	case f := <-p.free:
		return f, nil
	default:
	}
	p.mu.Lock()
	storer := p.storer
	p.mu.Unlock()
	if storer != nil {
		f, err := storer.TempFile(backend.PackFile)
		switch {
		case err == nil:
			p.mu.Lock()
			p.owned[f] = true
			p.mu.Unlock()
			return f, nil
		case errors.Is(err, errors.ErrUnsupported):
			p.cannotStore()
		default:
			return nil, fmt.Errorf("create pack spool file: %w", err)
		}
	}
	f, err := os.CreateTemp(p.dir, ".mbackup-pack-*")
	if err != nil {
		return nil, fmt.Errorf("create pack spool file in %s: %w (set a writable temporary folder)", p.dir, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// storerOf returns the backend that can take f over, or nil when f must
// be copied with Save.
func (p *spoolFiles) storerOf(f *os.File) backend.FileStorer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.owned[f] {
		return nil
	}
	return p.storer
}

// cannotStore makes every pack from now on, and those under way, copied
// with Save: the storer cannot hand its files over here.
func (p *spoolFiles) cannotStore() {
	p.mu.Lock()
	p.storer = nil
	p.mu.Unlock()
}

// put empties f and keeps it for the next pack, or closes it. The
// backend's own files are never reused: a store that failed late (its
// folder's fsync) may have left the file linked as a pack.
func (p *spoolFiles) put(f *os.File) {
	p.mu.Lock()
	owned := p.owned[f]
	delete(p.owned, f)
	p.mu.Unlock()
	if !owned && f.Truncate(0) == nil {
		if _, err := f.Seek(0, io.SeekStart); err == nil {
			select {
			case p.free <- f:
				return
			default:
			}
		}
	}
	f.Close()
}

func (p *spoolFiles) close() {
	for {
		select {
		case f := <-p.free:
			f.Close()
		default:
			return
		}
	}
}

// packer collects blobs of one type into the current pack.
type packer struct {
	typ blob.Type
	mu  sync.Mutex
	sp  *pack.Spool
}

func (p *packer) add(ctx context.Context, r *Repository, id blob.ID, sealed []byte, rawLen int, compressed bool) error {
	p.mu.Lock()
	if p.sp == nil {
		f, err := r.spools.get()
		if err != nil {
			p.mu.Unlock()
			return err
		}
		p.sp = pack.NewSpool(r.key, f)
	}
	if err := p.sp.Add(p.typ, id, sealed, rawLen, compressed); err != nil {
		// The spool is in an unknown state: drop it and its blobs.
		failed := p.sp
		p.sp = nil
		p.mu.Unlock()
		r.idx.failed(failed.Blobs())
		r.spools.put(failed.File())
		return err
	}
	var full *pack.Spool
	if p.sp.Size() >= int64(r.cfg.PackSize) {
		full, p.sp = p.sp, nil
	}
	p.mu.Unlock()
	if full != nil {
		return r.uploads.submit(ctx, full)
	}
	return nil
}

// take removes and returns the current pack, if it holds blobs.
func (p *packer) take() *pack.Spool {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp := p.sp
	p.sp = nil
	return sp
}

// uploader finalises and uploads packs with a bounded number of workers.
// Submitting blocks while all workers are busy and the queue is full, which
// bounds memory to (workers + queue + open packs) × pack size.
type uploader struct {
	r     *Repository
	queue chan job

	mu       sync.Mutex
	cond     *sync.Cond
	next     uint64
	inflight map[uint64]struct{}
	closed   bool
	wg       sync.WaitGroup
}

type job struct {
	seq uint64
	sp  *pack.Spool
}

func newUploader(r *Repository, workers int) *uploader {
	// An unbuffered queue: a full pack waits in the packer's goroutine
	// until an uploader is free, rather than in a queue holding more
	// pack buffers.
	u := &uploader{r: r, queue: make(chan job), inflight: make(map[uint64]struct{})}
	u.cond = sync.NewCond(&u.mu)
	for range workers {
		u.wg.Add(1)
		go u.work()
	}
	return u
}

func (u *uploader) submit(ctx context.Context, sp *pack.Spool) error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return errors.New("repository is closed")
	}
	u.next++
	seq := u.next
	u.inflight[seq] = struct{}{}
	u.mu.Unlock()
	select {
	case u.queue <- job{seq: seq, sp: sp}:
		return nil
	case <-ctx.Done():
		u.done(seq)
		u.r.idx.failed(sp.Blobs())
		u.r.spools.put(sp.File())
		return ctx.Err()
	}
}

func (u *uploader) done(seq uint64) {
	u.mu.Lock()
	delete(u.inflight, seq)
	u.cond.Broadcast()
	u.mu.Unlock()
}

// wait blocks until every pack submitted before the call is uploaded.
func (u *uploader) wait() {
	u.mu.Lock()
	defer u.mu.Unlock()
	mark := u.next
	for {
		busy := false
		for seq := range u.inflight {
			if seq <= mark {
				busy = true
				break
			}
		}
		if !busy {
			return
		}
		u.cond.Wait()
	}
}

func (u *uploader) close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	u.mu.Unlock()
	close(u.queue)
	u.wg.Wait()
}

func (u *uploader) work() {
	defer u.wg.Done()
	for j := range u.queue {
		u.upload(j)
		u.done(j.seq)
	}
}

func (u *uploader) upload(j job) {
	r := u.r
	blobs := j.sp.Blobs()
	f := j.sp.File()
	defer r.spools.put(f)
	// Uploads outlive the call that filled the pack: a cancelled backup's
	// blobs may already be shared with another one in this process.
	ctx := context.Background()
	size, id, err := j.sp.Finalize()
	if err == nil {
		h := backend.Handle{Type: backend.PackFile, Name: id.String()}
		s := r.spools.storerOf(f)
		if s != nil {
			if err = s.Store(ctx, h, f); errors.Is(err, errors.ErrUnsupported) {
				r.spools.cannotStore()
				s = nil
			}
		}
		if s == nil {
			err = r.be.Save(ctx, h, f, size)
		}
	}
	if err != nil {
		err = fmt.Errorf("upload pack %s: %w", id.Short(), err)
		r.failures.Add(1)
		r.lastErr.Store(&err)
		r.idx.failed(blobs)
		r.log.Error("pack upload failed", "pack", id.Short(), "err", err)
		return
	}
	if n := r.idx.uploaded(id, blobs); n >= writeIndexEvery {
		if err := r.idx.writeIndex(ctx, r); err != nil {
			r.log.Warn("intermediate index write failed; retried at flush", "err", err)
		}
	}
}

// Flush uploads the packs being assembled, waits for all uploads started
// so far and writes index files for them. After Flush returns nil, every
// blob saved before the call is durable and indexed.
func (r *Repository) Flush(ctx context.Context) error {
	for _, t := range []blob.Type{blob.Data, blob.Tree} {
		if sp := r.packers[t].take(); sp != nil {
			if err := r.uploads.submit(ctx, sp); err != nil {
				return err
			}
		}
	}
	r.uploads.wait()
	if err := r.idx.writeIndex(ctx, r); err != nil {
		return err
	}
	return nil
}

// UploadFailures returns the number of failed pack uploads so far and the
// last error; sessions compare the count before they commit.
func (r *Repository) UploadFailures() (int64, error) {
	n := r.failures.Load()
	if p := r.lastErr.Load(); p != nil {
		return n, *p
	}
	return n, nil
}

// LoadBlob loads, authenticates, decrypts and decompresses a blob (see
// OpenBlob), appending its plaintext to buf[:0].
func (r *Repository) LoadBlob(ctx context.Context, id blob.ID, buf []byte) ([]byte, error) {
	loc, ok := r.idx.lookup(id)
	if !ok {
		return nil, fmt.Errorf("load blob %s: %w", id.Short(), ErrBlobNotFound)
	}
	sealed, err := backend.ReadAt(ctx, r.be, backend.Handle{Type: backend.PackFile, Name: loc.Pack.String()}, int64(loc.Offset), int(loc.Length))
	if err != nil {
		return nil, fmt.Errorf("load blob %s from pack %s: %w", id.Short(), loc.Pack.Short(), err)
	}
	plain, err := r.OpenBlob(loc.Blob(id), sealed, buf)
	if err != nil {
		return nil, fmt.Errorf("load blob %s from pack %s: %w", id.Short(), loc.Pack.Short(), err)
	}
	return plain, nil
}

// OpenBlob authenticates, decrypts and decompresses the stored form of b,
// appending the plaintext to dst[:0]. A blob is sealed under a key derived
// from its ID, with the ID as associated data, so a blob that opens was
// sealed for that ID by a holder of the repository key: damage, a swapped
// blob or a wrong index entry all fail here. What opening cannot catch is
// a writer that sealed other bytes than it hashed; OpenBlobChecked does,
// for check --read-data and for prune, which copies blobs forward.
func (r *Repository) OpenBlob(b pack.Blob, sealed, dst []byte) ([]byte, error) {
	return r.openBlob(b, sealed, dst, false)
}

// OpenBlobChecked is OpenBlob that also recomputes the plaintext's keyed
// hash and compares it with b's ID.
func (r *Repository) OpenBlobChecked(b pack.Blob, sealed, dst []byte) ([]byte, error) {
	return r.openBlob(b, sealed, dst, true)
}

func (r *Repository) openBlob(b pack.Blob, sealed, dst []byte, rehash bool) ([]byte, error) {
	if len(sealed) != int(b.Length) {
		return nil, fmt.Errorf("%w: blob %s is %d bytes, index says %d", ErrDamaged, b.ID.Short(), len(sealed), b.Length)
	}
	var plain []byte
	var err error
	if b.Compressed {
		bp := r.bufs.Get().(*[]byte)
		defer r.bufs.Put(bp)
		var stored []byte
		stored, err = r.key.OpenBlob((*bp)[:0], sealed, b.ID)
		if err == nil {
			*bp = stored[:0]
			plain, err = r.dec.DecodeAll(stored, dst[:0])
		}
	} else {
		plain, err = r.key.OpenBlob(dst[:0], sealed, b.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: blob %s: %v", ErrDamaged, b.ID.Short(), err)
	}
	if len(plain) != int(b.RawLength) {
		return nil, fmt.Errorf("%w: blob %s decodes to %d bytes, index says %d", ErrDamaged, b.ID.Short(), len(plain), b.RawLength)
	}
	if rehash && r.key.BlobID(plain) != b.ID {
		return nil, fmt.Errorf("%w: blob %s does not match its ID", ErrDamaged, b.ID.Short())
	}
	return plain, nil
}

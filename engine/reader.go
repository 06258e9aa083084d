package engine

import (
	"context"
	"io"

	"github.com/mbackup/mbackup/engine/blob"
)

// ContentReader streams the concatenated plaintext of a list of blobs,
// loading up to prefetch blobs ahead in parallel so that a restore from
// S3 is not bound by one request's latency.
type ContentReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	out    chan chan result
	cur    []byte
	buf    []byte      // cur's storage, recycled once read
	free   chan []byte // recycled blob buffers
	err    error
}

type result struct {
	data []byte
	err  error
}

// NewContentReader returns a reader over the blobs ids. Close it to stop
// the prefetching early.
func (r *Repository) NewContentReader(ctx context.Context, ids []blob.ID, prefetch int) *ContentReader {
	if prefetch < 1 {
		prefetch = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	cr := &ContentReader{ctx: ctx, cancel: cancel, out: make(chan chan result, prefetch), free: make(chan []byte, 2*prefetch+1)}
	go func() {
		defer close(cr.out)
		sem := make(chan struct{}, prefetch)
		for _, id := range ids {
			ch := make(chan result, 1)
			select {
			case cr.out <- ch:
			case <-ctx.Done():
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ch <- result{err: ctx.Err()}
				return
			}
			var buf []byte
			select {
			case buf = <-cr.free:
			default:
			}
			go func() {
				defer func() { <-sem }()
				data, err := r.LoadBlob(ctx, id, buf)
				ch <- result{data: data, err: err}
			}()
		}
	}()
	return cr
}

// Read implements io.Reader.
func (cr *ContentReader) Read(p []byte) (int, error) {
	if err := cr.fill(); err != nil {
		return 0, err
	}
	n := copy(p, cr.cur)
	cr.cur = cr.cur[n:]
	return n, nil
}

// WriteTo implements io.WriterTo: io.Copy hands w whole blobs, without
// the copy through its own small buffer.
func (cr *ContentReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := cr.fill(); err != nil {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
		n, err := w.Write(cr.cur)
		total += int64(n)
		cr.cur = cr.cur[n:]
		if err != nil {
			return total, err
		}
	}
}

// fill makes cur non-empty with the next blob, or returns why it cannot.
func (cr *ContentReader) fill() error {
	for len(cr.cur) == 0 {
		if cr.buf != nil {
			select {
			case cr.free <- cr.buf[:0]:
			default:
			}
			cr.buf = nil
		}
		if cr.err != nil {
			return cr.err
		}
		ch, ok := <-cr.out
		if !ok {
			cr.err = io.EOF
			if err := cr.ctx.Err(); err != nil {
				cr.err = err
			}
			return cr.err
		}
		res := <-ch
		if res.err != nil {
			cr.err = res.err
			cr.cancel()
			return res.err
		}
		cr.cur, cr.buf = res.data, res.data
	}
	return nil
}

// Close stops prefetching.
func (cr *ContentReader) Close() error {
	cr.cancel()
	for ch := range cr.out {
		<-ch
	}
	return nil
}

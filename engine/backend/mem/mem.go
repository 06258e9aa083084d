// Package mem is an in-memory backend for fast unit tests. It keeps the
// contract of backend.Backend (atomic saves, ranged loads), so tests written
// against it say something about the real backends, but it is never the only
// test of an integration.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mbackup/mbackup/engine/backend"
)

// Backend keeps files in a map.
type Backend struct {
	mu    sync.Mutex
	files map[backend.Handle]entry
}

type entry struct {
	data    []byte
	modTime time.Time
}

var _ backend.Backend = (*Backend)(nil)

// New returns an empty backend.
func New() *Backend { return &Backend{files: make(map[backend.Handle]entry)} }

// Location returns "mem".
func (b *Backend) Location() string { return "mem" }

// Save stores a copy of data.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data io.ReaderAt, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(data, 0, size), buf); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.files[h] = entry{data: buf, modTime: time.Now()}
	return nil
}

// Load streams a range of the file to fn.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64, fn func(io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	e, ok := b.files[h]
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("load %v: %w", h, backend.ErrNotExist)
	}
	data := e.data
	if offset > int64(len(data)) {
		return fmt.Errorf("load %v: offset %d beyond size %d", h, offset, len(data))
	}
	data = data[offset:]
	if length > 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return fn(bytes.NewReader(data))
}

// Stat returns the file's size.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.files[h]
	if !ok {
		return backend.FileInfo{}, fmt.Errorf("stat %v: %w", h, backend.ErrNotExist)
	}
	return backend.FileInfo{Name: h.Name, Size: int64(len(e.data)), ModTime: e.modTime}, nil
}

// List calls fn for every file of type t.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	b.mu.Lock()
	var infos []backend.FileInfo
	for h, e := range b.files {
		if h.Type == t {
			infos = append(infos, backend.FileInfo{Name: h.Name, Size: int64(len(e.data)), ModTime: e.modTime})
		}
	}
	b.mu.Unlock()
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the file.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.files, h)
	return nil
}

// Close does nothing.
func (b *Backend) Close() error { return nil }

// Corrupt flips one bit of a stored file, for tests of damage detection.
func (b *Backend) Corrupt(h backend.Handle, offset int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.files[h]
	if !ok || offset >= len(e.data) {
		return fmt.Errorf("corrupt %v: no byte at %d", h, offset)
	}
	e.data = bytes.Clone(e.data)
	e.data[offset] ^= 0x01
	b.files[h] = e
	return nil
}

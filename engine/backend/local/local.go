// Package local stores a repository in a folder of the local file system.
//
// Every file is written to a temporary name in its final folder, fsynced,
// renamed into place and the folder fsynced, so a crash at any moment leaves
// either the old state or the complete new file under its final name, never
// a partial file. Temporary files start with a dot and are invisible to
// List; a crash may leave some behind, which Clean removes. Packs are
// written once: the repository assembles them in anonymous files of the
// folder itself (TempFile), which Store links into place.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mbackup/mbackup/engine/backend"
)

// Backend is a repository in a local folder.
type Backend struct {
	root string
}

var _ backend.Backend = (*Backend)(nil)

// Open returns a backend rooted at dir. The folder need not exist yet: Save
// creates folders as needed.
func Open(dir string) (*Backend, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open local repository %s: %w", dir, err)
	}
	return &Backend{root: abs}, nil
}

// Location returns the folder's path.
func (b *Backend) Location() string { return b.root }

func (b *Backend) path(h backend.Handle) string {
	return filepath.Join(b.root, filepath.FromSlash(backend.Path(h)))
}

// Save writes data to a temporary file next to its final name, fsyncs it and
// renames it into place.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data io.ReaderAt, size int64) error {
	final, dir, err := b.destination(ctx, h)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(dir, final, data, size); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	return nil
}

var _ backend.FileStorer = (*Backend)(nil)

// TempFile returns an anonymous file (O_TMPFILE) in the folder of t's
// files: it has no name until Store links it, so a crash leaves nothing.
func (b *Backend) TempFile(t backend.FileType) (*os.File, error) {
	dir := filepath.Join(b.root, filepath.FromSlash(backend.Path(backend.Handle{Type: t})))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("temporary file in %s: %w", dir, err)
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		// File systems without O_TMPFILE say so in several ways.
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("temporary file in %s: %w (%v)", dir, errors.ErrUnsupported, err)
		}
		return nil, fmt.Errorf("temporary file in %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(temporary)")), nil
}

// Store fsyncs f, a file from TempFile, links it under a temporary name
// next to h's and renames it into place, like Save without the copy. When
// the file cannot be linked the error matches errors.ErrUnsupported.
func (b *Backend) Store(ctx context.Context, h backend.Handle, f *os.File) error {
	final, dir, err := b.destination(ctx, h)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	tmp, err := tempName(dir, final)
	if err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	// Linking an anonymous file by descriptor needs /proc, or else
	// CAP_DAC_READ_SEARCH for AT_EMPTY_PATH.
	err = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		if err2 := unix.Linkat(int(f.Fd()), "", unix.AT_FDCWD, tmp, unix.AT_EMPTY_PATH); err2 != nil {
			// No /proc and no privilege, or a file system that cannot:
			// the caller copies the file with Save instead.
			return backend.Permanent(fmt.Errorf("save %v: link: %w (%v)", h, errors.ErrUnsupported, err))
		}
	}
	err = os.Rename(tmp, final)
	// Renaming a link onto another link of the same file (a store
	// retried after its folder's fsync failed) leaves both: drop ours.
	_ = os.Remove(tmp)
	if err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	return nil
}

// destination returns h's path and its folder, created if need be.
func (b *Backend) destination(ctx context.Context, h backend.Handle) (final, dir string, err error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	final = b.path(h)
	dir = filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("save %v: %w", h, err)
	}
	return final, dir, nil
}

// tempName returns a fresh temporary name for final in dir: hidden from
// List, and removed by CleanTemp if a crash leaves it behind.
func tempName(dir, final string) (string, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	return filepath.Join(dir, "."+filepath.Base(final)+".tmp-"+hex.EncodeToString(rnd[:])), nil
}

func writeFileAtomic(dir, final string, data io.ReaderAt, size int64) (err error) {
	tmp, err := tempName(dir, final)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = copyInto(f, data, size); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// Load streams a range of the file to fn.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64, fn func(io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(b.path(h))
	if err != nil {
		return wrap("load", h, err)
	}
	defer f.Close()
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return wrap("load", h, err)
		}
	}
	var rd io.Reader = f
	if length > 0 {
		rd = io.LimitReader(f, length)
	}
	return fn(rd)
}

// Stat returns the file's size and modification time.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	fi, err := os.Stat(b.path(h))
	if err != nil {
		return backend.FileInfo{}, wrap("stat", h, err)
	}
	return backend.FileInfo{Name: h.Name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for every file of type t.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	dir := filepath.Join(b.root, t.Dir())
	if t == backend.PackFile {
		shards, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %v files: %w", t, err)
		}
		for _, s := range shards {
			if !s.IsDir() || strings.HasPrefix(s.Name(), ".") {
				continue
			}
			if err := listDir(ctx, filepath.Join(dir, s.Name()), fn); err != nil {
				return fmt.Errorf("list %v files: %w", t, err)
			}
		}
		return nil
	}
	if err := listDir(ctx, dir, fn); err != nil {
		return fmt.Errorf("list %v files: %w", t, err)
	}
	return nil
}

func listDir(ctx context.Context, dir string, fn func(backend.FileInfo) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while listing
		}
		if err != nil {
			return err
		}
		if err := fn(backend.FileInfo{Name: e.Name(), Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the file; a missing file is not an error.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := os.Remove(b.path(h))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return wrap("remove", h, err)
	}
	return nil
}

// CleanTemp removes temporary files older than age, left behind by saves
// that were interrupted (a killed process). Younger ones may belong to
// saves in progress, here or in another process.
func (b *Backend) CleanTemp(age time.Duration) (int, error) {
	n := 0
	cutoff := time.Now().Add(-age)
	err := filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), ".") || !strings.Contains(d.Name(), ".tmp-") {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// Close does nothing; it exists to satisfy backend.Backend.
func (b *Backend) Close() error { return nil }

func wrap(op string, h backend.Handle, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %v: %w", op, h, backend.ErrNotExist)
	}
	return fmt.Errorf("%s %v: %w", op, h, err)
}

// copyInto writes the size bytes of data to the empty file f; a source
// that ends early is an error, not a shorter file.
func copyInto(f *os.File, data io.ReaderAt, size int64) error {
	n, err := io.Copy(f, io.NewSectionReader(data, 0, size))
	if err == nil && n != size {
		err = fmt.Errorf("source ended after %d of %d bytes", n, size)
	}
	return err
}

package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"
)

// FileType is the kind of a repository file; it selects the folder the file
// lives in.
type FileType uint8

const (
	// ConfigFile is the repository's encrypted configuration (one file).
	ConfigFile FileType = iota + 1
	// KeyFile holds the master key wrapped by a password-derived key.
	KeyFile
	// PackFile holds encrypted blobs.
	PackFile
	// IndexFile maps blobs to their pack, offset and length.
	IndexFile
	// SnapshotFile is a committed snapshot.
	SnapshotFile
	// LockFile announces a running writer session or prune.
	LockFile
	// TombstoneFile lists packs marked for deletion by prune.
	TombstoneFile
)

var typeDirs = map[FileType]string{
	ConfigFile:    "",
	KeyFile:       "keys",
	PackFile:      "data",
	IndexFile:     "index",
	SnapshotFile:  "snapshots",
	LockFile:      "locks",
	TombstoneFile: "tombstones",
}

// FileTypes lists every file type that lives in a folder, for tools that
// walk the whole repository.
var FileTypes = []FileType{KeyFile, PackFile, IndexFile, SnapshotFile, LockFile, TombstoneFile}

func (t FileType) String() string {
	switch t {
	case ConfigFile:
		return "config"
	case KeyFile:
		return "key"
	case PackFile:
		return "pack"
	case IndexFile:
		return "index"
	case SnapshotFile:
		return "snapshot"
	case LockFile:
		return "lock"
	case TombstoneFile:
		return "tombstone"
	}
	return fmt.Sprintf("filetype(%d)", uint8(t))
}

// Dir returns the folder holding files of type t, relative to the repository
// root ("" for the config file).
func (t FileType) Dir() string { return typeDirs[t] }

// Handle names one repository file.
type Handle struct {
	Type FileType
	Name string
}

func (h Handle) String() string {
	if h.Type == ConfigFile {
		return "config"
	}
	return h.Type.String() + " " + shortName(h.Name)
}

func shortName(name string) string {
	if len(name) > 16 {
		return name[:16]
	}
	return name
}

// Path returns the file's path relative to the repository root, with
// forward slashes. Packs are sharded by the first two hex digits of their
// name so that no folder grows beyond a few thousand entries.
func Path(h Handle) string {
	switch h.Type {
	case ConfigFile:
		return "config"
	case PackFile:
		if len(h.Name) >= 2 {
			return path.Join("data", h.Name[:2], h.Name)
		}
	}
	return path.Join(h.Type.Dir(), h.Name)
}

// FileInfo describes a stored file.
type FileInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Backend stores repository files. Implementations must be safe for
// concurrent use.
type Backend interface {
	// Location names the storage for messages, without credentials.
	Location() string
	// Save stores the size bytes of data under h atomically. Saving a
	// name that exists replaces it atomically too (locks are refreshed
	// this way). data is read only during the call, possibly more than
	// once (retries), which is why it is a ReaderAt: packs are spooled in
	// temporary files rather than held in memory.
	Save(ctx context.Context, h Handle, data io.ReaderAt, size int64) error
	// Load streams length bytes of h starting at offset to fn; length 0
	// means up to the end. fn may be called again if the read is retried,
	// so it must not keep state from an earlier call.
	Load(ctx context.Context, h Handle, offset, length int64, fn func(io.Reader) error) error
	// Stat returns information about h, or an error matching ErrNotExist.
	Stat(ctx context.Context, h Handle) (FileInfo, error)
	// List calls fn for every file of type t, in no particular order.
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error
	// Remove deletes h. Removing a missing file is not an error.
	Remove(ctx context.Context, h Handle) error
	// Close releases resources.
	Close() error
}

// ErrNotExist is matched (with errors.Is) by errors for missing files.
var ErrNotExist = errors.New("file does not exist")

// IsNotExist reports whether err says that a file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, ErrNotExist) }

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix (wrong credentials,
// missing bucket); the retry layer gives up on it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent, or says that a
// file does not exist, or that the operation was cancelled.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p) || IsNotExist(err) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// SaveBytes stores a byte slice under h.
func SaveBytes(ctx context.Context, be Backend, h Handle, data []byte) error {
	return be.Save(ctx, h, bytes.NewReader(data), int64(len(data)))
}

// ReadAll loads the whole of h.
func ReadAll(ctx context.Context, be Backend, h Handle) ([]byte, error) {
	var data []byte
	err := be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		var err error
		data, err = io.ReadAll(rd)
		return err
	})
	return data, err
}

// ReadAt loads length bytes of h at offset into a new buffer and checks that
// all of them arrived.
func ReadAt(ctx context.Context, be Backend, h Handle, offset int64, length int) ([]byte, error) {
	return ReadAtInto(ctx, be, h, offset, make([]byte, length))
}

// ReadAtInto loads len(buf) bytes of h at offset into buf, for callers that
// reuse their buffers.
func ReadAtInto(ctx context.Context, be Backend, h Handle, offset int64, buf []byte) ([]byte, error) {
	length := len(buf)
	err := be.Load(ctx, h, offset, int64(length), func(rd io.Reader) error {
		_, err := io.ReadFull(rd, buf)
		return err
	})
	if err != nil {
		return nil, err
	}
	return buf, nil
}

// FileStorer is implemented by backends that can store a file by taking
// it over rather than copying its bytes (the local folder: packs are then
// written once, not spooled and copied). TempFile returns an anonymous
// file on the backend's own storage, or an error matching
// errors.ErrUnsupported when it cannot; Store makes a file from TempFile,
// written to its end, the content of h, as durably and atomically as
// Save. After a successful Store the file belongs to the backend: the
// caller closes it and must not write to it.
type FileStorer interface {
	TempFile(t FileType) (*os.File, error)
	Store(ctx context.Context, h Handle, f *os.File) error
}

// TempCleaner is implemented by backends whose interrupted saves can leave
// temporary files behind (the local folder).
type TempCleaner interface {
	// CleanTemp removes temporary files older than age, and returns how
	// many it removed. Younger ones may belong to saves in progress.
	CleanTemp(age time.Duration) (int, error)
}

// AsTempCleaner finds a TempCleaner in be or in the backends it wraps
// (wrappers expose them with an Unwrap method).
func AsTempCleaner(be Backend) (TempCleaner, bool) {
	for {
		if c, ok := be.(TempCleaner); ok {
			return c, true
		}
		u, ok := be.(interface{ Unwrap() Backend })
		if !ok {
			return nil, false
		}
		be = u.Unwrap()
	}
}

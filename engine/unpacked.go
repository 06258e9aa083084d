package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
)

// Sealed files (config, index, snapshots, locks, tombstones) are stored as
// Seal(format byte ‖ payload) with the file type as associated data, so a
// file cannot be passed off as another type.
const (
	formatRaw  = 0
	formatZstd = 1
)

// ErrDamaged says that a stored file does not match its name or fails
// authentication.
var ErrDamaged = errors.New("stored file is damaged")

func (r *Repository) seal(t backend.FileType, plain []byte) []byte {
	payload := make([]byte, 0, len(plain)/2+64)
	if r.compression() != CompressionOff && len(plain) > 64 {
		payload = append(payload, formatZstd)
		payload = r.enc.EncodeAll(plain, payload)
	} else {
		payload = append(payload, formatRaw)
		payload = append(payload, plain...)
	}
	return r.key.Seal(nil, payload, []byte(t.String()))
}

func (r *Repository) unseal(t backend.FileType, sealed []byte) ([]byte, error) {
	payload, err := r.key.Open(nil, sealed, []byte(t.String()))
	if err != nil {
		return nil, err
	}
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrDamaged)
	}
	switch payload[0] {
	case formatRaw:
		return payload[1:], nil
	case formatZstd:
		plain, err := r.dec.DecodeAll(payload[1:], nil)
		if err != nil {
			return nil, fmt.Errorf("%w: decompress: %v", ErrDamaged, err)
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%w: unknown payload format %d", ErrDamaged, payload[0])
}

func (r *Repository) saveSealed(ctx context.Context, h backend.Handle, plain []byte) error {
	return backend.SaveBytes(ctx, r.be, h, r.seal(h.Type, plain))
}

func (r *Repository) loadSealed(ctx context.Context, h backend.Handle, checkName bool) ([]byte, error) {
	sealed, err := backend.ReadAll(ctx, r.be, h)
	if err != nil {
		return nil, err
	}
	if checkName && blob.Hash(sealed).String() != h.Name {
		return nil, fmt.Errorf("%v: %w: content does not match its name", h, ErrDamaged)
	}
	plain, err := r.unseal(h.Type, sealed)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", h, errors.Join(ErrDamaged, err))
	}
	return plain, nil
}

// SaveUnpacked stores plain as a sealed file of type t named by the hash of
// its stored bytes, and returns that name.
func (r *Repository) SaveUnpacked(ctx context.Context, t backend.FileType, plain []byte) (blob.ID, error) {
	sealed := r.seal(t, plain)
	id := blob.Hash(sealed)
	if err := backend.SaveBytes(ctx, r.be, backend.Handle{Type: t, Name: id.String()}, sealed); err != nil {
		return blob.ID{}, err
	}
	return id, nil
}

// LoadUnpacked loads a file stored by SaveUnpacked and checks it against its
// name.
func (r *Repository) LoadUnpacked(ctx context.Context, t backend.FileType, id blob.ID) ([]byte, error) {
	return r.loadSealed(ctx, backend.Handle{Type: t, Name: id.String()}, true)
}

// SaveNamed stores plain sealed under a chosen name, replacing any file of
// that name (lock files are refreshed this way).
func (r *Repository) SaveNamed(ctx context.Context, t backend.FileType, name string, plain []byte) error {
	return r.saveSealed(ctx, backend.Handle{Type: t, Name: name}, plain)
}

// LoadNamed loads a file stored by SaveNamed.
func (r *Repository) LoadNamed(ctx context.Context, t backend.FileType, name string) ([]byte, error) {
	return r.loadSealed(ctx, backend.Handle{Type: t, Name: name}, false)
}

// List lists the IDs of sealed files of type t; names that are not IDs
// (strays, temporary files) are skipped.
func (r *Repository) List(ctx context.Context, t backend.FileType, fn func(id blob.ID, size int64) error) error {
	return r.be.List(ctx, t, func(fi backend.FileInfo) error {
		id, err := blob.ParseID(fi.Name)
		if err != nil {
			return nil
		}
		return fn(id, fi.Size)
	})
}

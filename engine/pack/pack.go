// Package pack reads and writes pack files: many encrypted blobs in one
// repository file, so a repository of hundreds of gigabytes is tens of
// thousands of objects rather than millions.
//
// Layout:
//
//	blob_1 ‖ blob_2 ‖ … ‖ blob_n ‖ sealed header ‖ header length (uint32 LE)
//
// Each blob is sealed on its own (crypto.Key.SealBlob), so reading one blob
// needs one ranged read and repacking never re-encrypts. The header sits at
// the end so packs can be written in one pass; it is sealed under the
// master key and lists, per blob, its type, flags, ID, stored length and
// plaintext length; offsets follow from the order. Reading only the header
// suffices to rebuild the index entries of a pack.
//
// A pack is named by the SHA-256 of its tail (sealed header and length).
// The tail commits to every blob's ID and length, and each blob is
// authenticated on its own under a key derived from its ID, so a pack whose
// tail matches its name and whose blobs all open is exactly the pack that
// was written. Hashing only the tail spares a second hash pass over every
// byte a backup stores (a fifth of the save pipeline's CPU).
package pack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/crypto"
)

const (
	headerVersion = 1
	// entrySize is type/flags (1) + ID (32) + stored length (4) + plaintext length (4).
	entrySize = 1 + blob.IDSize + 4 + 4
	// MaxHeaderSize bounds the header a reader accepts, so a damaged
	// length field cannot make it allocate unbounded memory.
	MaxHeaderSize  = 16 << 20
	flagTree       = 1 << 0
	flagCompressed = 1 << 1
)

// Blob describes one blob inside a pack.
type Blob struct {
	Type       blob.Type
	ID         blob.ID
	Offset     uint32 // of the sealed blob within the pack
	Length     uint32 // sealed length
	RawLength  uint32 // plaintext length
	Compressed bool   // stored form is zstd
}

// Writer assembles a pack in memory.
type Writer struct {
	key   *crypto.Key
	buf   []byte
	blobs []Blob
}

// NewWriter returns an empty pack writer with room for about sizeHint bytes.
func NewWriter(key *crypto.Key, sizeHint int) *Writer {
	return &Writer{key: key, buf: make([]byte, 0, sizeHint+sizeHint/16)}
}

// NewWriterBuffer returns an empty pack writer that assembles the pack in
// buf's storage (it grows as needed), so that callers can recycle the
// buffers of uploaded packs.
func NewWriterBuffer(key *crypto.Key, buf []byte) *Writer {
	return &Writer{key: key, buf: buf[:0]}
}

// Add appends an already sealed blob.
func (w *Writer) Add(t blob.Type, id blob.ID, sealed []byte, rawLength int, compressed bool) {
	w.blobs = append(w.blobs, Blob{
		Type: t, ID: id, Offset: uint32(len(w.buf)), Length: uint32(len(sealed)),
		RawLength: uint32(rawLength), Compressed: compressed,
	})
	w.buf = append(w.buf, sealed...)
}

// Size returns the bytes written so far.
func (w *Writer) Size() int { return len(w.buf) }

// Count returns the number of blobs added.
func (w *Writer) Count() int { return len(w.blobs) }

// Blobs returns the blobs added so far.
func (w *Writer) Blobs() []Blob { return w.blobs }

// Finalize appends the header and returns the pack's bytes and its ID, the
// SHA-256 of those bytes.
func (w *Writer) Finalize() ([]byte, blob.ID) {
	n := len(w.buf)
	w.buf = appendHeader(w.buf, w.key, w.blobs)
	return w.buf, blob.Hash(w.buf[n:])
}

// ID returns the name a pack of the given bytes must have: the SHA-256 of
// its tail. It does not validate the pack.
func ID(data []byte) (blob.ID, error) {
	if len(data) < 4 {
		return blob.ID{}, fmt.Errorf("%w: %d bytes is too short", ErrFormat, len(data))
	}
	hlen := int(binary.LittleEndian.Uint32(data[len(data)-4:]))
	if hlen > len(data)-4 {
		return blob.ID{}, fmt.Errorf("%w: header length %d in a pack of %d bytes", ErrFormat, hlen, len(data))
	}
	return blob.Hash(data[len(data)-4-hlen:]), nil
}

// appendHeader appends the sealed header of blobs and its length.
func appendHeader(dst []byte, key *crypto.Key, blobs []Blob) []byte {
	hdr := make([]byte, 0, 1+len(blobs)*entrySize)
	hdr = append(hdr, headerVersion)
	for _, b := range blobs {
		hdr = appendEntry(hdr, b)
	}
	sealedLen := len(hdr) + crypto.Overhead
	dst = key.Seal(dst, hdr, []byte("pack header"))
	return binary.LittleEndian.AppendUint32(dst, uint32(sealedLen))
}

func appendEntry(dst []byte, b Blob) []byte {
	var flags byte
	if b.Type == blob.Tree {
		flags |= flagTree
	}
	if b.Compressed {
		flags |= flagCompressed
	}
	dst = append(dst, flags)
	dst = append(dst, b.ID[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, b.Length)
	dst = binary.LittleEndian.AppendUint32(dst, b.RawLength)
	return dst
}

// ErrFormat says that a pack is malformed.
var ErrFormat = errors.New("malformed pack")

// ReadAtFunc reads length bytes at offset of a pack.
type ReadAtFunc func(ctx context.Context, offset int64, length int) ([]byte, error)

// ReadHeader reads and decodes the header of a pack of the given size.
func ReadHeader(ctx context.Context, key *crypto.Key, size int64, read ReadAtFunc) ([]Blob, error) {
	if size < 4 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrFormat, size)
	}
	tail, err := read(ctx, size-4, 4)
	if err != nil {
		return nil, fmt.Errorf("read header length: %w", err)
	}
	hlen := int64(binary.LittleEndian.Uint32(tail))
	if hlen < crypto.Overhead+1 || hlen > MaxHeaderSize || hlen > size-4 {
		return nil, fmt.Errorf("%w: header length %d in a pack of %d bytes", ErrFormat, hlen, size)
	}
	sealed, err := read(ctx, size-4-hlen, int(hlen))
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	return decodeHeader(key, sealed, size-4-hlen)
}

// ParseHeader decodes the header of a pack held wholly in memory.
func ParseHeader(key *crypto.Key, data []byte) ([]Blob, error) {
	return ReadHeader(context.Background(), key, int64(len(data)), func(_ context.Context, off int64, n int) ([]byte, error) {
		return data[off : off+int64(n)], nil
	})
}

func decodeHeader(key *crypto.Key, sealed []byte, dataEnd int64) ([]Blob, error) {
	hdr, err := key.Open(nil, sealed, []byte("pack header"))
	if err != nil {
		return nil, fmt.Errorf("decrypt header: %w", err)
	}
	if len(hdr) < 1 || hdr[0] != headerVersion {
		return nil, fmt.Errorf("%w: unknown header version", ErrFormat)
	}
	hdr = hdr[1:]
	if len(hdr)%entrySize != 0 {
		return nil, fmt.Errorf("%w: header of %d bytes is not a whole number of entries", ErrFormat, len(hdr))
	}
	blobs := make([]Blob, 0, len(hdr)/entrySize)
	var offset int64
	for len(hdr) > 0 {
		flags := hdr[0]
		if flags&^(flagTree|flagCompressed) != 0 {
			return nil, fmt.Errorf("%w: unknown blob flags %#x", ErrFormat, flags)
		}
		b := Blob{Type: blob.Data, Compressed: flags&flagCompressed != 0, Offset: uint32(offset)}
		if flags&flagTree != 0 {
			b.Type = blob.Tree
		}
		copy(b.ID[:], hdr[1:1+blob.IDSize])
		b.Length = binary.LittleEndian.Uint32(hdr[1+blob.IDSize:])
		b.RawLength = binary.LittleEndian.Uint32(hdr[1+blob.IDSize+4:])
		if b.Length < crypto.Overhead {
			return nil, fmt.Errorf("%w: blob %s has stored length %d", ErrFormat, b.ID.Short(), b.Length)
		}
		offset += int64(b.Length)
		if offset > dataEnd {
			return nil, fmt.Errorf("%w: blobs extend past the header", ErrFormat)
		}
		blobs = append(blobs, b)
		hdr = hdr[entrySize:]
	}
	return blobs, nil
}

package pack

import (
	"bufio"
	"fmt"
	"os"

	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/crypto"
)

// Spool assembles a pack in a temporary file: while a pack fills up and
// waits for its upload, its bytes sit in the page cache rather than in the
// process's memory, so memory does not grow with the pack size or the
// number of uploads in flight.
type Spool struct {
	key   *crypto.Key
	f     *os.File
	w     *bufio.Writer
	size  int64
	blobs []Blob
}

// NewSpool starts a pack in f, which must be empty and at offset 0.
func NewSpool(key *crypto.Key, f *os.File) *Spool {
	return &Spool{key: key, f: f, w: bufio.NewWriterSize(f, 64<<10)}
}

// Add appends an already sealed blob.
func (s *Spool) Add(t blob.Type, id blob.ID, sealed []byte, rawLength int, compressed bool) error {
	if _, err := s.w.Write(sealed); err != nil {
		return fmt.Errorf("spool pack: %w", err)
	}
	s.blobs = append(s.blobs, Blob{
		Type: t, ID: id, Offset: uint32(s.size), Length: uint32(len(sealed)),
		RawLength: uint32(rawLength), Compressed: compressed,
	})
	s.size += int64(len(sealed))
	return nil
}

// Size returns the bytes written so far.
func (s *Spool) Size() int64 { return s.size }

// Count returns the number of blobs added.
func (s *Spool) Count() int { return len(s.blobs) }

// Blobs returns the blobs added so far.
func (s *Spool) Blobs() []Blob { return s.blobs }

// File returns the file the pack is spooled to; after Finalize it holds
// exactly the pack.
func (s *Spool) File() *os.File { return s.f }

// Finalize appends the header and returns the pack's size and ID.
func (s *Spool) Finalize() (int64, blob.ID, error) {
	tail := appendHeader(nil, s.key, s.blobs)
	if _, err := s.w.Write(tail); err != nil {
		return 0, blob.ID{}, fmt.Errorf("spool pack: %w", err)
	}
	if err := s.w.Flush(); err != nil {
		return 0, blob.ID{}, fmt.Errorf("spool pack: %w", err)
	}
	s.size += int64(len(tail))
	return s.size, blob.Hash(tail), nil
}

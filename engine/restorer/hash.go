package restorer

import (
	"errors"
	"io"
	"os"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/blob"
)

// hasher checks whether a file holds exactly a list of blobs. It reads the
// file in the blobs' lengths (from the index) and compares keyed hashes:
// if the content is equal, cutting it where the snapshot cut it gives the
// same IDs, and no chunking is needed.
type hasher struct {
	repo *engine.Repository
	buf  []byte
}

func newHasher(repo *engine.Repository) *hasher {
	return &hasher{repo: repo, buf: make([]byte, repo.Config().MaxChunk)}
}

// matches reports whether the file at path has exactly the content ids.
func (h *hasher) matches(path string, ids []blob.ID) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	key := h.repo.Key()
	for _, id := range ids {
		loc, ok := h.repo.Lookup(id)
		if !ok {
			return false, nil // cannot tell: write the file
		}
		n := int(loc.RawLength)
		if n > len(h.buf) {
			h.buf = make([]byte, n)
		}
		if _, err := io.ReadFull(f, h.buf[:n]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return false, nil // shorter
			}
			return false, err
		}
		if key.BlobID(h.buf[:n]) != id {
			return false, nil
		}
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n > 0 {
		return false, nil // longer
	}
	return true, nil
}

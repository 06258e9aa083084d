package restorer

import (
	"bytes"
	"errors"
	"io"
	"os"

	"github.com/restic/chunker"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/blob"
)

// hasher computes the blob IDs a file would get at backup time.
type hasher struct {
	repo  *engine.Repository
	small []byte
	chunk []byte
	c     *chunker.Chunker
}

func newHasher(repo *engine.Repository) *hasher {
	cfg := repo.Config()
	return &hasher{repo: repo, small: make([]byte, cfg.MinChunk+1), chunk: make([]byte, 0, cfg.MaxChunk), c: repo.Chunker(nil)}
}

// matches reports whether the file at path has exactly the content ids.
func (h *hasher) matches(path string, ids []blob.ID) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	key := h.repo.Key()
	n, err := io.ReadFull(f, h.small)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if n == 0 {
			return len(ids) == 0, nil
		}
		return len(ids) == 1 && key.BlobID(h.small[:n]) == ids[0], nil
	default:
		return false, err
	}
	h.repo.ResetChunker(h.c, io.MultiReader(bytes.NewReader(h.small[:n]), f))
	i := 0
	for {
		ch, err := h.c.Next(h.chunk)
		if errors.Is(err, io.EOF) {
			return i == len(ids), nil
		}
		if err != nil {
			return false, err
		}
		h.chunk = ch.Data[:0]
		if i >= len(ids) || key.BlobID(ch.Data) != ids[i] {
			return false, nil
		}
		i++
	}
}

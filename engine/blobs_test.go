package engine_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/pack"
)

// Opening a blob authenticates it against its ID; only the checked open
// also catches a writer that sealed other bytes than it hashed.
func TestOpenBlob(t *testing.T) {
	r := initRepo(t, mem.New())
	key := r.Key()
	plain := []byte("moodledata/filedir/ab/cd/abcdef0123")
	id := key.BlobID(plain)
	other := key.BlobID([]byte("some other content"))
	seal := func(data []byte, id blob.ID) []byte {
		sealed, err := key.SealBlob(nil, data, id)
		if err != nil {
			t.Fatal(err)
		}
		return sealed
	}
	good := seal(plain, id)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	blobFor := func(id blob.ID, sealed []byte) pack.Blob {
		return pack.Blob{Type: blob.Data, ID: id, Length: uint32(len(sealed)), RawLength: uint32(len(plain))}
	}
	tests := []struct {
		name          string
		b             pack.Blob
		sealed        []byte
		open, checked bool // whether each succeeds
	}{
		{"intact", blobFor(id, good), good, true, true},
		{"damaged", blobFor(id, flipped), flipped, false, false},
		{"indexed under another ID", blobFor(other, good), good, false, false},
		{"sealed for an ID that is not its hash", blobFor(other, seal(plain, other)), seal(plain, other), true, false},
		{"truncated", blobFor(id, good), good[:len(good)-1], false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				name string
				open func(pack.Blob, []byte, []byte) ([]byte, error)
				ok   bool
			}{{"OpenBlob", r.OpenBlob, tt.open}, {"OpenBlobChecked", r.OpenBlobChecked, tt.checked}} {
				got, err := c.open(tt.b, tt.sealed, nil)
				switch {
				case c.ok && (err != nil || !bytes.Equal(got, plain)):
					t.Errorf("%s: %q, %v; want the plaintext", c.name, got, err)
				case !c.ok && !errors.Is(err, engine.ErrDamaged):
					t.Errorf("%s: %v; want ErrDamaged", c.name, err)
				}
			}
		})
	}
}

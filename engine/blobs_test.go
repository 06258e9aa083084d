package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"testing"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/fault"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/backend/retry"
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

// packCounter is a local folder that counts how packs reach it.
type packCounter struct {
	*local.Backend
	saves, stores atomic.Int64
	refuse        bool // Store fails as a file system without links would
}

func (c *packCounter) Save(ctx context.Context, h backend.Handle, data io.ReaderAt, size int64) error {
	if h.Type == backend.PackFile {
		c.saves.Add(1)
	}
	return c.Backend.Save(ctx, h, data, size)
}

func (c *packCounter) Store(ctx context.Context, h backend.Handle, f *os.File) error {
	c.stores.Add(1)
	if c.refuse {
		return backend.Permanent(fmt.Errorf("store %v: %w", h, errors.ErrUnsupported))
	}
	return c.Backend.Store(ctx, h, f)
}

// On a local folder packs are assembled in the folder's own temporary
// files and handed over whole; behind a wrapper that cannot hand files
// over they are copied with Save. Either way they read back intact.
func TestPacksHandedOverToLocalFolder(t *testing.T) {
	tests := []struct {
		name   string
		wrap   func(*packCounter) backend.Backend
		refuse bool
		stored bool
	}{
		{"local folder", func(c *packCounter) backend.Backend { return c }, false, true},
		{"behind retries", func(c *packCounter) backend.Backend { return retry.New(c, retry.DefaultPolicy, nil) }, false, true},
		{"behind a wrapper without hand-over", func(c *packCounter) backend.Backend { return fault.New(c, 1) }, false, false},
		{"hand-over refused", func(c *packCounter) backend.Backend { return retry.New(c, retry.DefaultPolicy, nil) }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb, err := local.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			c := &packCounter{Backend: lb, refuse: tt.refuse}
			r := initRepo(t, tt.wrap(c))
			data := randomBytes(5, 12<<20)
			ids, _ := saveAndCommit(t, r, data)
			saves, stores := c.saves.Load(), c.stores.Load()
			if tt.stored && (stores == 0 || saves != 0) {
				t.Errorf("%d packs handed over, %d copied; want all handed over", stores, saves)
			}
			// A refused hand-over is tried (by the uploads already under
			// way), then packs are copied.
			if !tt.stored && (saves == 0 || (stores > 0) != tt.refuse) {
				t.Errorf("%d hand-overs tried, %d packs copied; want all copied", stores, saves)
			}
			if got := loadAll(t, r, ids); !bytes.Equal(got, data) {
				t.Fatal("data read back differs")
			}
		})
	}
}

package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mbackup/mbackup/engine/backend"
)

func TestSaveFromReadersAndFiles(t *testing.T) {
	data := make([]byte, 3<<20+17)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	// A spooled pack: a file holding more than the part saved, with its
	// position somewhere in the middle.
	spool := func(t *testing.T, dir string) io.ReaderAt {
		f, err := os.CreateTemp(dir, "spool")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if _, err := f.Write(append(data, "trailing bytes not saved"...)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(12345, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name string
		src  func(t *testing.T) io.ReaderAt
	}{
		{"bytes", func(t *testing.T) io.ReaderAt { return bytes.NewReader(data) }},
		{"file on the same file system", func(t *testing.T) io.ReaderAt { return spool(t, t.TempDir()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			src := tt.src(t)
			h := backend.Handle{Type: backend.PackFile, Name: "ab0123"}
			for range 2 { // a retried save reads the source again
				if err := be.Save(context.Background(), h, src, int64(len(data))); err != nil {
					t.Fatal(err)
				}
				got, err := backend.ReadAll(context.Background(), be, h)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("saved %d bytes that differ from the %d given", len(got), len(data))
				}
			}
			if f, ok := src.(*os.File); ok {
				if pos, _ := f.Seek(0, io.SeekCurrent); pos != 12345 {
					t.Errorf("the source's position moved to %d", pos)
				}
			}
		})
	}
}

func TestSaveFromShortSourceFails(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "spool")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("only this"); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]io.ReaderAt{"file": f, "bytes": bytes.NewReader([]byte("only this"))} {
		t.Run(name, func(t *testing.T) {
			be, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			h := backend.Handle{Type: backend.PackFile, Name: "cd4567"}
			if err := be.Save(context.Background(), h, src, 1<<20); err == nil {
				t.Fatal("saving more bytes than the source holds succeeded")
			}
			if _, err := be.Stat(context.Background(), h); !backend.IsNotExist(err) {
				t.Errorf("a failed save left the file behind: %v", err)
			}
		})
	}
}

// names lists every entry below root, temporary ones included.
func names(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p[len(root)+1:])
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A pack written in a TempFile and stored is the pack, under its name
// only; a TempFile never stored leaves nothing behind.
func TestTempFileStore(t *testing.T) {
	root := t.TempDir()
	be, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h := backend.Handle{Type: backend.PackFile, Name: "ab" + strings.Repeat("0", 62)}
	write := func(content string) *os.File {
		f, err := be.TempFile(backend.PackFile)
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skipf("the test folder's file system has no O_TMPFILE: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(content); err != nil {
			t.Fatal(err)
		}
		return f
	}
	abandoned := write("never stored")
	abandoned.Close()
	if got := names(t, root); len(got) != 0 {
		t.Fatalf("an abandoned temporary file left %v", got)
	}
	for _, content := range []string{"first pack", "the same name, stored again"} {
		f := write(content)
		if err := be.Store(ctx, h, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got, err := backend.ReadAll(ctx, be, h)
		if err != nil || string(got) != content {
			t.Fatalf("stored %q, read %q (%v)", content, got, err)
		}
		if n := names(t, root); len(n) != 1 || n[0] != filepath.FromSlash(backend.Path(h)) {
			t.Fatalf("files after store: %v", n)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	f := write("cancelled")
	defer f.Close()
	other := backend.Handle{Type: backend.PackFile, Name: "cd" + strings.Repeat("0", 62)}
	if err := be.Store(cancelled, other, f); err == nil {
		t.Fatal("store with a cancelled context succeeded")
	}
	if _, err := be.Stat(ctx, other); !backend.IsNotExist(err) {
		t.Fatalf("a failed store left %v: %v", other, err)
	}
}

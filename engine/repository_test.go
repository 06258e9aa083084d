package engine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/fault"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/backend/s3/s3test"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/tree"
)

const testPassword = "correct horse battery staple"

func testOptions() engine.Options {
	return engine.Options{KDF: crypto.KDFParams{N: 1 << 10, R: 8, P: 1}}
}

func initRepo(t testing.TB, be backend.Backend) *engine.Repository {
	t.Helper()
	r, err := engine.Init(context.Background(), be, testPassword, engine.InitOptions{PackSize: 4 << 20}, testOptions())
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// sqlLike returns compressible text resembling a COPY section of a dump.
func sqlLike(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	words := []string{"course", "user", "viewed", "\\core\\event\\course_viewed", "mod_forum", "r", "c", "127.0.0.1", "web", "N;", "a:0:{}"}
	for i := 0; b.Len() < n; i++ {
		b.WriteString(string(rune('0' + i%10)))
		for range 8 {
			b.WriteByte('\t')
			b.WriteString(words[rng.IntN(len(words))])
		}
		b.WriteString("\t1700000000\n")
	}
	return b.Bytes()[:n]
}

func backends(t *testing.T) map[string]func(t *testing.T) backend.Backend {
	return map[string]func(t *testing.T) backend.Backend{
		"mem": func(t *testing.T) backend.Backend { return mem.New() },
		"s3":  func(t *testing.T) backend.Backend { return s3test.Start(t).Backend(t) },
		"local": func(t *testing.T) backend.Backend {
			be, err := local.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return be
		},
	}
}

func saveAndCommit(t testing.TB, r *engine.Repository, data []byte) ([]blob.ID, engine.StreamStats) {
	t.Helper()
	ctx := context.Background()
	s, err := r.StartSession(ctx, "backup", "test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	ids, st, err := r.SaveStream(ctx, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatalf("save stream: %v", err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return ids, st
}

func loadAll(t testing.TB, r *engine.Repository, ids []blob.ID) []byte {
	t.Helper()
	var out []byte
	for _, id := range ids {
		b, err := r.LoadBlob(context.Background(), id, nil)
		if err != nil {
			t.Fatalf("load blob: %v", err)
		}
		out = append(out, b...)
	}
	return out
}

func TestStreamRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 4095, 300 << 10, 5 << 20, 23<<20 + 17}
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			be := mk(t)
			r := initRepo(t, be)
			for i, n := range sizes {
				data := randomBytes(uint64(i), n)
				if i%2 == 1 {
					data = sqlLike(uint64(i), n)
				}
				ids, st := saveAndCommit(t, r, data)
				if st.Bytes != int64(n) {
					t.Errorf("size %d: read %d bytes", n, st.Bytes)
				}
				// A fresh handle proves the data is durable and indexed.
				r2, err := engine.Open(context.Background(), be, testPassword, testOptions())
				if err != nil {
					t.Fatal(err)
				}
				if err := r2.LoadIndex(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := loadAll(t, r2, ids); !bytes.Equal(got, data) {
					t.Errorf("size %d: round trip mismatch (got %d bytes)", n, len(got))
				}
				r2.Close()
			}
		})
	}
}

func TestDedup(t *testing.T) {
	r := initRepo(t, mem.New())
	data := randomBytes(1, 50<<20)
	_, st1 := saveAndCommit(t, r, data)
	_, st2 := saveAndCommit(t, r, data)
	if st1.Stored < int64(len(data)) || st1.Stored > int64(len(data))*102/100 {
		t.Errorf("first save stored %d bytes for %d bytes of random data", st1.Stored, len(data))
	}
	if st2.Stored != 0 || st2.NewBlobs != 0 {
		t.Errorf("second save of the same data stored %d bytes in %d new blobs", st2.Stored, st2.NewBlobs)
	}
}

func TestSmallEditStoresFewChunks(t *testing.T) {
	r := initRepo(t, mem.New())
	data := sqlLike(3, 50<<20)
	_, st1 := saveAndCommit(t, r, data)
	edited := bytes.Clone(data)
	mid := len(edited) / 2
	// Edit 1% of the stream: rewrite a run of rows in the middle.
	copy(edited[mid:], sqlLike(9, len(edited)/100))
	_, st2 := saveAndCommit(t, r, edited)
	if st2.NewBlobs > 6 {
		t.Errorf("a 1%% edit produced %d new chunks out of %d", st2.NewBlobs, st2.Blobs)
	}
	if st2.Stored > st1.Stored/10 {
		t.Errorf("a 1%% edit stored %d bytes, first save stored %d", st2.Stored, st1.Stored)
	}
}

func TestWrongPassword(t *testing.T) {
	be := mem.New()
	initRepo(t, be)
	_, err := engine.Open(context.Background(), be, "wrong", testOptions())
	if !errors.Is(err, engine.ErrWrongPassword) {
		t.Fatalf("open with wrong password: got %v, want ErrWrongPassword", err)
	}
}

func TestInitRefusesExisting(t *testing.T) {
	be := mem.New()
	initRepo(t, be)
	_, err := engine.Init(context.Background(), be, testPassword, engine.InitOptions{}, testOptions())
	if !errors.Is(err, engine.ErrRepositoryExists) {
		t.Fatalf("second init: got %v, want ErrRepositoryExists", err)
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := engine.Open(context.Background(), mem.New(), testPassword, testOptions())
	if !errors.Is(err, engine.ErrNoRepository) {
		t.Fatalf("open empty backend: got %v", err)
	}
}

func TestSeveralKeys(t *testing.T) {
	be := mem.New()
	r := initRepo(t, be)
	if _, err := r.AddKey(context.Background(), "second password"); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{testPassword, "second password"} {
		r2, err := engine.Open(context.Background(), be, pw, testOptions())
		if err != nil {
			t.Fatalf("open with %q: %v", pw, err)
		}
		r2.Close()
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("pg_dump: connection lost")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestStreamReadError(t *testing.T) {
	r := initRepo(t, mem.New())
	_, _, err := r.SaveStream(context.Background(), io.MultiReader(&failingReader{n: 3 << 20}), nil)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("connection lost")) {
		t.Fatalf("want the reader's error, got %v", err)
	}
}

func TestDropTreeCache(t *testing.T) {
	ctx := context.Background()
	fb := fault.New(mem.New(), 1)
	r := initRepo(t, fb)
	saved, err := r.SaveTree(ctx, &tree.Tree{Nodes: []*tree.Node{{Name: "a", Type: tree.File, Size: 0}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadTree(ctx, saved.ID); err != nil {
		t.Fatal(err)
	}
	// Packs can no longer be read: the cached tree still loads...
	fb.Add(fault.Rule{Op: fault.Load, Type: backend.PackFile})
	if _, err := r.LoadTree(ctx, saved.ID); err != nil {
		t.Fatalf("load a cached tree: %v", err)
	}
	// ...until the cache is dropped and the pack must be read again.
	r.DropTreeCache()
	if _, err := r.LoadTree(ctx, saved.ID); !errors.Is(err, fault.ErrInjected) {
		t.Fatalf("load after DropTreeCache = %v, want the pack read again (and the injected fault)", err)
	}
}

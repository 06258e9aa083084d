package engine_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/index"
	"github.com/mbackup/mbackup/engine/pack"
)

// fuzzRepo is a repository in memory with a cheap key derivation.
func fuzzRepo(f *testing.F) (*engine.Repository, *mem.Backend) {
	be := mem.New()
	r, err := engine.Init(context.Background(), be, "fuzz password", engine.InitOptions{},
		engine.Options{KDF: crypto.KDFParams{N: 1 << 10, R: 8, P: 1}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	return r, be
}

// Plaintexts of the sealed files the engine writes.
func seedSnapshotJSON() [][]byte {
	parent := blob.Hash([]byte("parent"))
	sns := []engine.Snapshot{
		{Time: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC), Source: "client-x", Hostname: "appliance", Tree: blob.Hash([]byte("tree"))},
		{Time: time.Date(2026, 11, 27, 2, 0, 0, 5, time.FixedZone("CET", 3600)), Source: "client-y", Hostname: "a",
			Tags: []string{"moodle43"}, Parent: &parent, Tree: blob.Hash([]byte("t2")),
			Meta: json.RawMessage(`{"env":"client-y","added_bytes":123,"database":{"dump_bytes":5}}`)},
	}
	var out [][]byte
	for _, sn := range sns {
		b, _ := json.Marshal(&sn)
		out = append(out, b)
	}
	return append(out, []byte(`{}`), []byte(`{"tree":"zz"}`), []byte(`null`))
}

func seedIndexEncodings() [][]byte {
	f := &index.File{Supersedes: []blob.ID{blob.Hash([]byte("old"))}, Packs: []index.PackBlobs{{
		ID: blob.Hash([]byte("pack")),
		Blobs: []pack.Blob{
			{Type: blob.Data, ID: blob.Hash([]byte("a")), Offset: 0, Length: 100, RawLength: 72},
			{Type: blob.Tree, ID: blob.Hash([]byte("b")), Offset: 100, Length: 40, RawLength: 300, Compressed: true},
		},
	}}}
	return [][]byte{f.Encode(), (&index.File{}).Encode(), {1}, {}}
}

// save stores stored bytes as a file of type t named by their hash, as
// SaveUnpacked does, bypassing the sealing.
func save(t *testing.T, be backend.Backend, typ backend.FileType, stored []byte) blob.ID {
	t.Helper()
	id := blob.Hash(stored)
	if err := backend.SaveBytes(context.Background(), be, backend.Handle{Type: typ, Name: id.String()}, stored); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Remove(context.Background(), backend.Handle{Type: typ, Name: id.String()}) })
	return id
}

// FuzzLoadStoredFile writes arbitrary bytes where a snapshot or index file
// belongs (a damaged object, a truncated upload, another tool's file) and
// loads it the way every command does. It must be an error, never a panic;
// the seeds include files sealed with the repository's key, which load.
func FuzzLoadStoredFile(f *testing.F) {
	repo, be := fuzzRepo(f)
	ctx := context.Background()
	for _, plain := range seedSnapshotJSON() {
		id, err := repo.SaveUnpacked(ctx, backend.SnapshotFile, plain)
		if err != nil {
			f.Fatal(err)
		}
		stored, err := backend.ReadAll(ctx, be, backend.Handle{Type: backend.SnapshotFile, Name: id.String()})
		if err != nil {
			f.Fatal(err)
		}
		be.Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: id.String()})
		f.Add(stored, false)
		f.Add(stored[:len(stored)-1], false)
	}
	for _, plain := range seedIndexEncodings() {
		id, err := repo.SaveUnpacked(ctx, backend.IndexFile, plain)
		if err != nil {
			f.Fatal(err)
		}
		stored, _ := backend.ReadAll(ctx, be, backend.Handle{Type: backend.IndexFile, Name: id.String()})
		be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()})
		f.Add(stored, true)
	}
	f.Add([]byte("garbage"), false)
	f.Fuzz(func(t *testing.T, stored []byte, asIndex bool) {
		if asIndex {
			id := save(t, be, backend.IndexFile, stored)
			if _, err := repo.LoadIndexFile(ctx, id); err != nil {
				// The whole index must refuse it too, naming the file.
				if err := repo.LoadIndex(ctx); err == nil {
					t.Fatal("LoadIndex accepted an index file that LoadIndexFile refused")
				}
			}
			return
		}
		id := save(t, be, backend.SnapshotFile, stored)
		sn, err := repo.LoadSnapshot(ctx, id)
		if err == nil && sn.ID() != id {
			t.Fatalf("loaded snapshot has ID %s, stored as %s", sn.ID().Short(), id.Short())
		}
		// Listing all snapshots skips and reports a damaged one.
		sns, lerr := repo.Snapshots(ctx)
		if (err == nil) != (lerr == nil && len(sns) == 1) {
			t.Fatalf("LoadSnapshot: %v, but Snapshots: %d, %v", err, len(sns), lerr)
		}
		// A file under another file's name is damage.
		other := blob.Hash(append([]byte("x"), stored...))
		if err := backend.SaveBytes(ctx, be, backend.Handle{Type: backend.SnapshotFile, Name: other.String()}, stored); err != nil {
			t.Fatal(err)
		}
		defer be.Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: other.String()})
		if _, err := repo.LoadSnapshot(ctx, other); err == nil {
			t.Fatal("a snapshot file whose content does not match its name loaded")
		}
	})
}

// FuzzSealedPayload seals fuzzed payloads with the repository's key, so
// everything behind the authentication is explored: the payload format
// byte, zstd decompression of hostile frames, and JSON and index decoding.
func FuzzSealedPayload(f *testing.F) {
	repo, be := fuzzRepo(f)
	ctx := context.Background()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, plain := range seedSnapshotJSON() {
		f.Add(append([]byte{0}, plain...), false)
		f.Add(enc.EncodeAll(plain, []byte{1}), false)
	}
	for _, plain := range seedIndexEncodings() {
		f.Add(append([]byte{0}, plain...), true)
		f.Add(enc.EncodeAll(plain, []byte{1}), true)
	}
	f.Add([]byte{2, 'x'}, false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, payload []byte, asIndex bool) {
		typ := backend.SnapshotFile
		if asIndex {
			typ = backend.IndexFile
		}
		stored := repo.Key().Seal(nil, payload, []byte(typ.String()))
		id := save(t, be, typ, stored)
		if asIndex {
			_, err := repo.LoadIndexFile(ctx, id)
			if err == nil {
				if err := repo.LoadIndex(ctx); err != nil {
					t.Fatalf("LoadIndexFile accepted a file that LoadIndex refuses: %v", err)
				}
			}
			return
		}
		if sn, err := repo.LoadSnapshot(ctx, id); err == nil && sn.ID() != id {
			t.Fatalf("wrong ID")
		}
		// Sealed as a snapshot, it must never pass for an index file.
		h := backend.Handle{Type: backend.IndexFile, Name: id.String()}
		if err := backend.SaveBytes(ctx, be, h, stored); err != nil {
			t.Fatal(err)
		}
		defer be.Remove(ctx, h)
		if _, err := repo.LoadIndexFile(ctx, id); err == nil {
			t.Fatal("a snapshot file loaded as an index file")
		}
	})
}

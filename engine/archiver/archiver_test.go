package archiver_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/archiver"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/internal/fstest"
	"github.com/mbackup/mbackup/engine/restorer"
)

// hashedTree lays out files as Moodle's file store does: one file per
// folder two levels down, the walk's worst case.
func hashedTree(t *testing.T, root string, n int) {
	t.Helper()
	for i := range n {
		dir := filepath.Join(root, "filedir", fmt.Sprintf("%02x", i%7), fmt.Sprintf("%02x", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%040x", i)), []byte(fmt.Sprintf("content of file %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Folders are walked by several goroutines at once: the tree that comes
// out is the folder, whole, whatever order they finished in, and so is
// the next run's, taken from the parent without reading a file.
func TestArchiveManyFolders(t *testing.T) {
	ctx := context.Background()
	r, err := engine.Init(ctx, mem.New(), "pw", engine.InitOptions{PackSize: 2 << 20},
		engine.Options{KDF: crypto.KDFParams{N: 1024, R: 8, P: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src := t.TempDir()
	hashedTree(t, src, 300)
	if err := fstest.Build(filepath.Join(src, "mixed"), 3, 60); err != nil {
		t.Fatal(err)
	}
	want, err := fstest.Snapshot(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	var dirs, files int64
	for _, e := range want {
		switch {
		case e.Mode.IsDir():
			dirs++
		case e.Mode.IsRegular():
			files++
		}
	}
	var warnings atomic.Int64
	opts := archiver.Options{Workers: 4, Warn: func(rel string, err error) { warnings.Add(1); t.Errorf("warning %s: %v", rel, err) }}
	for run, parent := range []bool{false, true} {
		s, err := r.StartSession(ctx, "backup", "test")
		if err != nil {
			t.Fatal(err)
		}
		id, st, err := archiver.Archive(ctx, r, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, &engine.Snapshot{Source: "test", Tree: id}); err != nil {
			t.Fatal(err)
		}
		s.Close(ctx)
		if st.Dirs != dirs || st.Files != files {
			t.Errorf("run %d: %d folders and %d files, want %d and %d", run, st.Dirs, st.Files, dirs, files)
		}
		if parent && st.Unchanged != files {
			t.Errorf("run %d: %d files unchanged, want all %d", run, st.Unchanged, files)
		}
		dst := filepath.Join(t.TempDir(), "restore")
		if _, err := restorer.Restore(ctx, r, id, dst, restorer.Options{Verify: true}); err != nil {
			t.Fatal(err)
		}
		got, err := fstest.Snapshot(dst, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := fstest.Diff(want, got); len(diff) > 0 {
			t.Errorf("run %d: restored tree differs: %v", run, diff[:min(len(diff), 5)])
		}
		opts.Parent = &id
	}
}

package restorer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/archiver"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/fault"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/internal/fstest"
	"github.com/mbackup/mbackup/engine/restorer"
)

func setup(t *testing.T, be backend.Backend) *engine.Repository {
	t.Helper()
	r, err := engine.Init(context.Background(), be, "pw", engine.InitOptions{PackSize: 2 << 20},
		engine.Options{KDF: crypto.KDFParams{N: 1024, R: 8, P: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func archive(t *testing.T, r *engine.Repository, dir string, exclude []string) blob.ID {
	t.Helper()
	ctx := context.Background()
	s, err := r.StartSession(ctx, "backup", "test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	id, _, err := archiver.Archive(ctx, r, dir, archiver.Options{Exclude: exclude, Warn: func(rel string, err error) { t.Logf("warning %s: %v", rel, err) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, &engine.Snapshot{Source: "test", Tree: id}); err != nil {
		t.Fatal(err)
	}
	return id
}

func snap(t *testing.T, dir string, skip func(string) bool) map[string]fstest.Entry {
	t.Helper()
	s, err := fstest.Snapshot(dir, skip)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRestoreIntoEmptyFolder(t *testing.T) {
	src := t.TempDir()
	if err := fstest.Build(src, 1, 120); err != nil {
		t.Fatal(err)
	}
	r := setup(t, mem.New())
	id := archive(t, r, src, nil)
	dst := filepath.Join(t.TempDir(), "out")
	st, err := restorer.Restore(context.Background(), r, id, dst, restorer.Options{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := fstest.Diff(snap(t, src, nil), snap(t, dst, nil)); len(d) > 0 {
		t.Fatalf("restored tree differs:\n%s", strings.Join(d, "\n"))
	}
	if st.Verified != len(st.Write)-2 { // two symlinks are not verified
		t.Errorf("verified %d files, wrote %d entries", st.Verified, len(st.Write))
	}
}

func TestRestoreInPlaceWritesOnlyDifferences(t *testing.T) {
	src := t.TempDir()
	if err := fstest.Build(src, 2, 80); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "cache/x"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "cache/x/junk"), []byte("old cache"), 0o644)
	exclude := []string{"cache"}
	r := setup(t, mem.New())
	id := archive(t, r, src, exclude)
	want := snap(t, src, func(rel string) bool { return rel == "cache" })

	// Damage the folder in every way a day of use can.
	os.WriteFile(filepath.Join(src, "a/new-file"), []byte("added later"), 0o644)
	os.RemoveAll(filepath.Join(src, "filedir/01"))
	os.Remove(filepath.Join(src, "lang/current"))
	os.Symlink("elsewhere", filepath.Join(src, "lang/current"))
	os.RemoveAll(filepath.Join(src, "empty"))
	os.WriteFile(filepath.Join(src, "empty"), []byte("a file where a folder was"), 0o644)
	os.WriteFile(filepath.Join(src, "cache/x/junk"), []byte("new cache"), 0o644)
	var changed string
	for rel, e := range want {
		if e.Mode.IsRegular() && strings.HasPrefix(rel, "a/b/") {
			changed = rel
			break
		}
	}
	os.WriteFile(filepath.Join(src, changed), []byte("edited"), 0o644)

	st, err := restorer.Restore(context.Background(), r, id, src, restorer.Options{Delete: true, Exclude: exclude, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := fstest.Diff(want, snap(t, src, func(rel string) bool { return rel == "cache" })); len(d) > 0 {
		t.Fatalf("restored tree differs:\n%s", strings.Join(d, "\n"))
	}
	if got, _ := os.ReadFile(filepath.Join(src, "cache/x/junk")); string(got) != "new cache" {
		t.Errorf("excluded folder was touched: %q", got)
	}
	if st.Unchanged == 0 || len(st.Write) > 40 {
		t.Errorf("in-place restore wrote %d entries and kept %d: it should keep most", len(st.Write), st.Unchanged)
	}
	if len(st.Delete) != 1 || st.Delete[0] != "a/new-file" {
		t.Errorf("deleted %v, want [a/new-file]", st.Delete)
	}
	// A second restore finds nothing to do.
	st, err = restorer.Restore(context.Background(), r, id, src, restorer.Options{Delete: true, Exclude: exclude})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Write) != 0 || len(st.Delete) != 0 {
		t.Errorf("second restore wrote %v and deleted %v", st.Write, st.Delete)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	src := t.TempDir()
	if err := fstest.Build(src, 3, 40); err != nil {
		t.Fatal(err)
	}
	r := setup(t, mem.New())
	id := archive(t, r, src, nil)
	os.WriteFile(filepath.Join(src, "extra"), []byte("x"), 0o644)
	os.Remove(filepath.Join(src, "lang/current"))
	before := snap(t, src, nil)
	st, err := restorer.Restore(context.Background(), r, id, src, restorer.Options{Delete: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := fstest.Diff(before, snap(t, src, nil)); len(d) > 0 {
		t.Fatalf("dry run changed the folder:\n%s", strings.Join(d, "\n"))
	}
	if len(st.Delete) != 1 || len(st.Write) != 1 {
		t.Errorf("plan: write %v delete %v", st.Write, st.Delete)
	}
}

func TestFailedRestoreLeavesTargetUntouched(t *testing.T) {
	src := t.TempDir()
	if err := fstest.Build(src, 4, 100); err != nil {
		t.Fatal(err)
	}
	fb := fault.New(mem.New(), 1)
	r := setup(t, fb)
	id := archive(t, r, src, nil)
	// Change everything, then fail the restore half way through the packs.
	target := t.TempDir()
	if err := fstest.Build(target, 99, 60); err != nil {
		t.Fatal(err)
	}
	before := snap(t, target, nil)
	fb.Add(fault.Rule{Op: fault.Load, Type: backend.PackFile, Skip: 2})
	_, err := restorer.Restore(context.Background(), r, id, target, restorer.Options{Delete: true, Workers: 1})
	if !errors.Is(err, fault.ErrInjected) {
		t.Fatalf("want the injected fault, got %v", err)
	}
	if d := fstest.Diff(before, snap(t, target, nil)); len(d) > 0 {
		t.Fatalf("failed restore changed the target:\n%s", strings.Join(d, "\n"))
	}
}

// TestVerifyCatchesABadWrite damages staged files after their last byte
// was written and before verification: the restore must fail, name a
// file, and leave no trace, whether a byte changed or a file grew.
func TestVerifyCatchesABadWrite(t *testing.T) {
	src := t.TempDir()
	if err := fstest.Build(src, 3, 60); err != nil {
		t.Fatal(err)
	}
	r := setup(t, mem.New())
	id := archive(t, r, src, nil)
	for _, damage := range []struct {
		name string
		do   func(f *os.File, size int64) error
	}{
		{"a byte flipped", func(f *os.File, size int64) error {
			b := make([]byte, 1)
			if _, err := f.ReadAt(b, size/2); err != nil {
				return err
			}
			b[0] ^= 0x20
			_, err := f.WriteAt(b, size/2)
			return err
		}},
		{"a byte appended", func(f *os.File, size int64) error {
			_, err := f.WriteAt([]byte{0}, size)
			return err
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "out")
			damaged := ""
			progress := func(p restorer.Progress) {
				if p.FilesDone != p.FilesTotal || damaged != "" {
					return
				}
				// Every file is written: damage the largest staged one.
				var largest int64
				filepath.WalkDir(parent, func(path string, d os.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() {
						if fi, err := d.Info(); err == nil && fi.Size() > largest {
							largest, damaged = fi.Size(), path
						}
					}
					return nil
				})
				f, err := os.OpenFile(damaged, os.O_RDWR, 0)
				if err != nil {
					t.Error(err)
					return
				}
				defer f.Close()
				if err := damage.do(f, largest); err != nil {
					t.Error(err)
				}
			}
			_, err := restorer.Restore(context.Background(), r, id, dst, restorer.Options{Verify: true, Workers: 1, Progress: progress})
			if damaged == "" {
				t.Fatal("the progress callback never saw every file written")
			}
			if err == nil || !strings.Contains(err.Error(), "verify") || !strings.Contains(err.Error(), filepath.Base(damaged)) {
				t.Fatalf("restore with a damaged staged file %s: got %v, want a verification error naming it", filepath.Base(damaged), err)
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Errorf("a failed restore left %d entries behind", len(entries))
			}
		})
	}
}

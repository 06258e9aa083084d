package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/archiver"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/checker"
	"github.com/mbackup/mbackup/engine/restorer"
)

// The repository in testdata/repo-v1 was written by an earlier build of
// this engine and is committed: every later build must still open, check
// and restore it, so a change of the stored format is caught here and not
// by an operator restoring last year's backup. Regenerate it (only when
// the format version is bumped on purpose) with
//
//	go test ./engine -run TestRepositoryFormatV1 -update-golden
var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/repo-v1 with this build")

const (
	goldenDir      = "../testdata/repo-v1"
	goldenPassword = "mbackup format v1 fixture"
	goldenSource   = "client-fixture"
)

var goldenMeta = json.RawMessage(`{"fixture":"format v1"}`)

// goldenFiles is the fixture's folder: text, an incompressible file, a file
// of several chunks, an empty file, nesting and a symlink.
func goldenFiles() map[string][]byte {
	rng := rand.New(rand.NewPCG(7, 7))
	random := make([]byte, 3000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var log bytes.Buffer
	for i := 0; log.Len() < 900<<10; i++ {
		fmt.Fprintf(&log, "%d\t%d\t\\core\\event\\course_viewed\tr\t%d\n", i, rng.IntN(5000), 1700000000+i)
	}
	return map[string][]byte{
		"config.txt":                []byte("wwwroot = https://client.example.ch\n"),
		"filedir/ab/cd/abcd1234":    random,
		"filedir/ef/01/ef01log":     log.Bytes(),
		"filedir/empty":             {},
		"trashdir/12/34/1234aa":     []byte("deleted but kept\n"),
		"lang/de_ch/langconfig.php": []byte("<?php $string['thislanguage'] = 'Deutsch (Schweiz)';\n"),
	}
}

func writeGoldenSource(t *testing.T, dir string) {
	t.Helper()
	for rel, data := range goldenFiles() {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("filedir/ab/cd/abcd1234", filepath.Join(dir, "latest")); err != nil {
		t.Fatal(err)
	}
}

func writeGoldenRepository(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeGoldenSource(t, src)
	if err := os.RemoveAll(goldenDir); err != nil {
		t.Fatal(err)
	}
	be, err := local.Open(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := engine.Init(ctx, be, goldenPassword, engine.InitOptions{PackSize: 1 << 20}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.StartSession(ctx, "backup", goldenSource)
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := archiver.Archive(ctx, r, src, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sn := &engine.Snapshot{Time: time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC), Source: goldenSource, Hostname: "fixture", Tree: root, Meta: goldenMeta}
	if _, err := s.Commit(ctx, sn); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRepositoryFormatV1(t *testing.T) {
	if *updateGolden {
		writeGoldenRepository(t)
	}
	ctx := context.Background()
	// Work on a copy: opening and checking must not need to write, but a
	// test must not be able to change the fixture either.
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(goldenDir)); err != nil {
		t.Fatalf("copy fixture: %v", err)
	}
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := engine.Open(ctx, be, goldenPassword, engine.Options{})
	if err != nil {
		t.Fatalf("open the v1 fixture: %v", err)
	}
	defer r.Close()

	sns, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sns) != 1 {
		t.Fatalf("%d snapshots, want 1", len(sns))
	}
	sn := sns[0]
	if sn.Source != goldenSource || sn.Hostname != "fixture" || !sn.Time.Equal(time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)) || !bytes.Equal(sn.Meta, goldenMeta) {
		t.Errorf("snapshot = %+v, want the fixture's fields", sn)
	}

	res, err := checker.Check(ctx, r, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 || res.PacksRead == 0 {
		t.Fatalf("check --read-data of the fixture: %d packs read, errors %v", res.PacksRead, res.Errors)
	}

	out := filepath.Join(t.TempDir(), "restored")
	if _, err := restorer.Restore(ctx, r, sn.Tree, out, restorer.Options{Verify: true}); err != nil {
		t.Fatalf("restore the fixture: %v", err)
	}
	want := goldenFiles()
	got := 0
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		if d.Type()&fs.ModeSymlink != 0 {
			if target, err := os.Readlink(p); err != nil || rel != "latest" || target != "filedir/ab/cd/abcd1234" {
				t.Errorf("symlink %s -> %q (%v)", rel, target, err)
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		exp, ok := want[filepath.ToSlash(rel)]
		switch {
		case !ok:
			t.Errorf("restored %s, which the fixture does not have", rel)
		case !bytes.Equal(data, exp):
			t.Errorf("%s: %d bytes restored differ from the fixture's %d", rel, len(data), len(exp))
		}
		got++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(want) {
		t.Errorf("restored %d files, want %d", got, len(want))
	}
}

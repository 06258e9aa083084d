package checker_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/archiver"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/fault"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/checker"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/internal/fstest"
)

var testOpts = engine.Options{KDF: crypto.KDFParams{N: 1024, R: 8, P: 1}}

func backup(t testing.TB, r *engine.Repository, dir, source string) blob.ID {
	t.Helper()
	ctx := context.Background()
	s, err := r.StartSession(ctx, "backup", source)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	tree, _, err := archiver.Archive(ctx, r, dir, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Commit(ctx, &engine.Snapshot{Source: source, Tree: tree})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newRepo(t *testing.T, be backend.Backend) *engine.Repository {
	r, err := engine.Init(context.Background(), be, "pw", engine.InitOptions{PackSize: 1 << 20}, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestCleanRepository(t *testing.T) {
	r := newRepo(t, mem.New())
	src := t.TempDir()
	fstest.Build(src, 1, 50)
	backup(t, r, src, "a")
	backup(t, r, src, "b")
	res, err := checker.Check(context.Background(), r, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("clean repository has errors: %v", res.Errors)
	}
	if res.Snapshots != 2 || res.PacksRead != res.Packs || res.Packs == 0 {
		t.Errorf("checked %d snapshots, read %d of %d packs", res.Snapshots, res.PacksRead, res.Packs)
	}
}

func TestFlippedByteNamesPackAndSnapshot(t *testing.T) {
	be := mem.New()
	r := newRepo(t, be)
	src1, src2 := t.TempDir(), t.TempDir()
	fstest.Build(src1, 1, 30)
	fstest.Build(src2, 2, 30)
	sn1 := backup(t, r, src1, "client-a")
	sn2 := backup(t, r, src2, "client-b")

	// Damage one data pack that only client-a's snapshot uses.
	var victim blob.ID
	_ = sn2
	packs := packsOf(t, r)
	for _, p := range packs {
		if p.data && p.sources["client-a"] && !p.sources["client-b"] {
			victim = p.id
			break
		}
	}
	if victim.IsNull() {
		t.Fatal("no pack used only by client-a")
	}
	if err := be.Corrupt(backend.Handle{Type: backend.PackFile, Name: victim.String()}, 100); err != nil {
		t.Fatal(err)
	}
	res, err := checker.Check(context.Background(), r, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() {
		t.Fatal("check --read-data passed on a damaged pack")
	}
	all := strings.Join(res.Errors, "\n")
	if !strings.Contains(all, victim.Short()) {
		t.Errorf("errors do not name pack %s:\n%s", victim.Short(), all)
	}
	if len(res.DamagedSnapshots) != 1 || res.DamagedSnapshots[0].ID != sn1 {
		t.Errorf("damaged snapshots %+v, want only %s", res.DamagedSnapshots, sn1.Short())
	}
	// The structural check alone does not read packs and passes.
	res, err = checker.Check(context.Background(), r, checker.Options{})
	if err != nil || !res.OK() {
		t.Errorf("structural check: %v %v", err, res.Errors)
	}
}

func TestMissingPack(t *testing.T) {
	be := mem.New()
	r := newRepo(t, be)
	src := t.TempDir()
	fstest.Build(src, 3, 30)
	backup(t, r, src, "x")
	var any blob.ID
	be.List(context.Background(), backend.PackFile, func(fi backend.FileInfo) error {
		any, _ = blob.ParseID(fi.Name)
		return nil
	})
	be.Remove(context.Background(), backend.Handle{Type: backend.PackFile, Name: any.String()})
	res, err := checker.Check(context.Background(), r, checker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || !strings.Contains(strings.Join(res.Errors, "\n"), any.Short()) {
		t.Errorf("missing pack %s not reported: %v", any.Short(), res.Errors)
	}
}

func TestParseSubset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{{"5%", "5%", true}, {"2.5%", "2.5%", true}, {"1/5", "1/5", true}, {"0%", "", false}, {"101%", "", false}, {"6/5", "", false}, {"x", "", false}} {
		s, err := checker.ParseSubset(tc.in)
		if (err == nil) != tc.ok || (tc.ok && s.String() != tc.want) {
			t.Errorf("ParseSubset(%q) = %v, %v", tc.in, s, err)
		}
	}
}

// TestCrashMidSave kills a backup process while it uploads packs and
// checks that the repository stays valid.
func TestCrashMidSave(t *testing.T) {
	if os.Getenv("MBACKUP_CRASH_CHILD") != "" {
		crashChild()
		return
	}
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	be, _ := local.Open(repoDir)
	r := newRepo(t, be)
	// One committed snapshot before the crash.
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	fstest.Build(src, 5, 40)
	backup(t, r, src, "before")

	big := filepath.Join(dir, "big")
	os.MkdirAll(big, 0o755)
	rng := rand.New(rand.NewPCG(7, 7))
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	os.WriteFile(filepath.Join(big, "dump"), data, 0o644)

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidSave$")
	cmd.Env = append(os.Environ(), "MBACKUP_CRASH_CHILD=1", "REPO="+repoDir, "SRC="+big)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed: %v\n%s", err, out.String())
	}
	r2, err := engine.Open(context.Background(), be, "pw", testOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	res, err := checker.Check(context.Background(), r2, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("repository damaged after a crash: %v", res.Errors)
	}
	if res.Snapshots != 1 {
		t.Errorf("%d snapshots after the crash, want 1", res.Snapshots)
	}
	if res.Packs == 0 || res.UnindexedPacks == 0 && res.Blobs == res.ReferencedBlobs {
		t.Errorf("the crashed backup left no trace (%d packs, %d unindexed): was it killed mid-save?", res.Packs, res.UnindexedPacks)
	}
}

func crashChild() {
	lb, _ := local.Open(os.Getenv("REPO"))
	fb := fault.New(lb, 1)
	// Kill the process while it saves its third pack.
	fb.Add(fault.Rule{Op: fault.Save, Type: backend.PackFile, Skip: 2, Hook: func(fault.Op, backend.Handle) {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}})
	// One uploader: the two packs before the third are complete when the
	// process dies, so the crash leaves a trace to check.
	o := testOpts
	o.Uploaders = 1
	r, err := engine.Open(context.Background(), fb, "pw", o)
	if err != nil {
		os.Exit(3)
	}
	ctx := context.Background()
	s, err := r.StartSession(ctx, "backup", "crash")
	if err != nil {
		os.Exit(4)
	}
	tree, _, err := archiver.Archive(ctx, r, os.Getenv("SRC"), archiver.Options{})
	if err != nil {
		os.Exit(5)
	}
	s.Commit(ctx, &engine.Snapshot{Source: "crash", Tree: tree})
	os.Exit(6)
}

type packUse struct {
	id      blob.ID
	data    bool
	sources map[string]bool
}

// packsOf maps each pack to the snapshot sources whose files use it.
func packsOf(t *testing.T, r *engine.Repository) []*packUse {
	ctx := context.Background()
	sns, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[blob.ID]*packUse{}
	var walk func(id blob.ID, src string)
	walk = func(id blob.ID, src string) {
		tr, err := r.LoadTree(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tr.Nodes {
			if n.Subtree != nil {
				walk(*n.Subtree, src)
			}
			for _, b := range n.Content {
				loc, _ := r.Lookup(b)
				p := byID[loc.Pack]
				if p == nil {
					p = &packUse{id: loc.Pack, data: true, sources: map[string]bool{}}
					byID[loc.Pack] = p
				}
				p.sources[src] = true
			}
		}
	}
	for _, sn := range sns {
		walk(sn.Tree, sn.Source)
	}
	var out []*packUse
	for _, p := range byID {
		out = append(out, p)
	}
	return out
}

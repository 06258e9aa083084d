package prune_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend/faultproxy"
	"github.com/mbackup/mbackup/engine/backend/retry"
	"github.com/mbackup/mbackup/engine/backend/s3"
	"github.com/mbackup/mbackup/engine/backend/s3/s3test"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/internal/fstest"
	"github.com/mbackup/mbackup/engine/prune"
)

// s3Repo is a repository on the real S3 server behind a fault proxy, with
// the retry backend production uses (shorter waits).
type s3Repo struct {
	proxy *faultproxy.Proxy
	retry *retry.Backend
	repo  *engine.Repository
}

func newS3Repo(t *testing.T) *s3Repo {
	t.Helper()
	cfg := s3test.Start(t).Config(t)
	p, err := faultproxy.New(cfg.Endpoint, 11)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	cfg.Endpoint = p.Addr()
	cfg.IdleTimeout = time.Second
	be, err := s3.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rb := retry.New(be, retry.Policy{Attempts: 6, Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}, nil)
	return &s3Repo{proxy: p, retry: rb, repo: newRepo(t, rb)}
}

// prunable backs up a folder twice, deleting two thirds of its files in
// between, and forgets the first snapshot: prune then has packs to delete,
// packs to repack and index files to replace. It returns the kept snapshot
// and its content.
func prunable(t *testing.T, r *engine.Repository, seed uint64) (blob.ID, map[string]fstest.Entry) {
	t.Helper()
	dir, _ := build(t, seed, 150)
	first := mustBackup(t, r, dir, "x")
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if n%3 != 0 {
				os.Remove(p)
			}
			n++
		}
		return nil
	})
	want, err := fstest.Snapshot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	second := mustBackup(t, r, dir, "x")
	if err := r.RemoveSnapshot(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	return second, want
}

// A fault that persists through every retry fails prune at that step with
// a message naming the cause; the repository stays valid, the kept
// snapshot restores, and the next prune finishes the job.
func TestPrunePersistentS3Faults(t *testing.T) {
	steps := []struct {
		name  string
		rule  faultproxy.Rule
		cause string
	}{
		{"read packs", faultproxy.Rule{Kind: faultproxy.Reset, Method: "GET", PathContains: "/data/", After: 2000}, "connection reset"},
		{"upload repacked pack", faultproxy.Rule{Kind: faultproxy.Status, Status: 503, Method: "PUT", PathContains: "/data/"}, "503"},
		{"write index", faultproxy.Rule{Kind: faultproxy.Status, Status: 500, Method: "PUT", PathContains: "/index/"}, "500"},
		{"delete old index", faultproxy.Rule{Kind: faultproxy.Status, Status: 503, Method: "DELETE", PathContains: "/index/"}, "503"},
		{"write tombstone", faultproxy.Rule{Kind: faultproxy.Stall, Method: "PUT", PathContains: "/tombstones/", Duration: time.Hour}, "i/o timeout"},
		{"delete packs", faultproxy.Rule{Kind: faultproxy.Refuse, Method: "DELETE", PathContains: "/data/"}, "remove pack"},
		{"list packs", faultproxy.Rule{Kind: faultproxy.Status, Status: 503, Method: "GET", PathContains: "prefix=repo%2Fdata"}, "503"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			s := newS3Repo(t)
			kept, want := prunable(t, s.repo, 21)
			s.proxy.Add(st.rule)
			_, err := prune.Run(context.Background(), s.repo, prune.Options{})
			if err == nil {
				t.Fatalf("prune succeeded through a persistent fault (%d injected)", s.proxy.Stats().Total())
			}
			if s.proxy.Stats().Total() == 0 {
				t.Fatalf("the fault never fired; prune failed for another reason: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "prune") || (st.cause != "" && !strings.Contains(err.Error(), st.cause)) {
				t.Errorf("error does not say what failed and why (want %q): %v", st.cause, err)
			}
			t.Logf("prune failed as it should: %v", err)
			s.proxy.Clear()
			mustCheck(t, s.repo)
			mustRestore(t, s.repo, kept, want)
			stats, err := prune.Run(context.Background(), s.repo, prune.Options{})
			if err != nil {
				t.Fatalf("next prune: %v", err)
			}
			res := mustCheck(t, s.repo)
			if res.UnindexedPacks != 0 || stats.PendingTombstones != 0 {
				t.Errorf("next prune left %d unindexed packs, %d tombstones", res.UnindexedPacks, stats.PendingTombstones)
			}
			mustRestore(t, s.repo, kept, want)
		})
	}
}

// Transient faults sprinkled over every request are retried: prune
// finishes in one run and frees the space.
func TestPruneTransientS3Faults(t *testing.T) {
	t.Parallel()
	s := newS3Repo(t)
	kept, want := prunable(t, s.repo, 22)
	for _, r := range []faultproxy.Rule{
		{Kind: faultproxy.Status, Status: 503, Probability: 0.1},
		{Kind: faultproxy.Status, Status: 500, Probability: 0.05},
		{Kind: faultproxy.Reset, After: 1000, Probability: 0.05},
		{Kind: faultproxy.Stall, After: 500, Duration: 50 * time.Millisecond, Probability: 0.05},
	} {
		s.proxy.Add(r)
	}
	st, err := prune.Run(context.Background(), s.repo, prune.Options{})
	if err != nil {
		t.Fatalf("prune through transient faults: %v", err)
	}
	faults := s.proxy.Stats()
	t.Logf("prune: deleted %d packs, repacked %d; %d requests, faults %v, %d retries", st.DeletedPacks, st.Repacked, faults.Requests, faults.Injected, s.retry.Retries())
	if faults.Total() == 0 || s.retry.Retries() == 0 {
		t.Fatalf("no fault was injected or retried (%v, %d retries): the test proves nothing", faults.Injected, s.retry.Retries())
	}
	if st.DeletedPacks == 0 || st.Repacked == 0 || st.PendingTombstones != 0 {
		t.Errorf("prune did not finish its work: %+v", st)
	}
	s.proxy.Clear()
	if res := mustCheck(t, s.repo); res.UnindexedPacks != 0 {
		t.Errorf("after prune: %d unindexed packs", res.UnindexedPacks)
	}
	mustRestore(t, s.repo, kept, want)
	// Nothing is left for the next prune: the faults cost no extra work.
	if st, err := prune.Run(context.Background(), s.repo, prune.Options{}); err != nil || st.MarkedPacks != 0 || st.DeletedPacks != 0 || st.Repacked != 0 {
		t.Errorf("second prune: %v %+v", err, st)
	}
}

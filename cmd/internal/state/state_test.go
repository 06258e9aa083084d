package state

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct{ job, env, want string }{
		{JobBackup, "client-x", "client-x"},
		{JobStaging, "client-x", "client-x.staging"},
		{JobPrune, "", "_prune"},
		{JobCheck, "", "_check"},
	} {
		if got := Key(tc.job, tc.env); got != tc.want {
			t.Errorf("Key(%q, %q) = %q, want %q", tc.job, tc.env, got, tc.want)
		}
	}
}

func TestUpdateLoadAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state folder: %v, mode %v; want 0700", err, fi.Mode())
	}
	start := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	if _, err := s.Update(JobBackup, "client-x", func(r *Record) {
		r.LastStart, r.Result = start, Running
	}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Update(JobBackup, "client-x", func(r *Record) {
		r.LastEnd, r.Result, r.Error = start.Add(time.Minute), Failed, "database: connection refused"
		r.ConsecutiveFailures++
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.LastStart != start || r.ConsecutiveFailures != 1 || !r.Failed() {
		t.Fatalf("update did not keep earlier fields: %+v", r)
	}
	if _, err := s.Update(JobPrune, "", func(r *Record) { r.Result = OK; r.LastSuccess = start }); err != nil {
		t.Fatal(err)
	}

	// A second process (mbackup status) reads the same records.
	all, err := Reader(dir).All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("All: %d records, want 2: %v", len(all), all)
	}
	got := all["client-x"]
	if got.Env != "client-x" || got.Job != JobBackup || got.Error != "database: connection refused" || !got.LastStart.Equal(start) {
		t.Errorf("client-x record = %+v", got)
	}
	if p := all["_prune"]; p.Job != JobPrune || !p.LastSuccess.Equal(start) {
		t.Errorf("_prune record = %+v", p)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "never-created")
	all, err := Reader(dir).All()
	if err != nil || len(all) != 0 {
		t.Fatalf("All on a missing folder = %v, %v; want empty, nil", all, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Reader created the folder")
	}
	r, err := Reader(dir).Load("client-x")
	if err != nil || r.Result != "" {
		t.Errorf("Load missing = %+v, %v", r, err)
	}
}

func TestCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if err := os.WriteFile(filepath.Join(dir, "client-x.json"), []byte("{half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.All(); err == nil || !strings.Contains(err.Error(), "client-x") {
		t.Errorf("All with a corrupt record: err = %v, want one naming client-x", err)
	}
	// The service must go on recording: the next update replaces it.
	if _, err := s.Update(JobBackup, "client-x", func(r *Record) { r.Result = OK }); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Load("client-x"); err != nil || r.Result != OK {
		t.Errorf("after update: %+v, %v", r, err)
	}
}

func TestConcurrentUpdates(t *testing.T) {
	s, _ := Open(t.TempDir())
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Update(JobBackup, "client-x", func(r *Record) { r.ConsecutiveFailures++ }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if r, _ := s.Load("client-x"); r.ConsecutiveFailures != 20 {
		t.Errorf("ConsecutiveFailures = %d after 20 concurrent increments, want 20", r.ConsecutiveFailures)
	}
}

package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Results of a run (Record.Result).
const (
	Running     = "running"     // started, not finished (or the process died)
	OK          = "ok"          // succeeded
	Failed      = "failed"      // failed; see Error
	Interrupted = "interrupted" // cancelled by a shutdown: not a failure
)

// Job kinds (Record.Job).
const (
	JobBackup  = "backup"
	JobPrune   = "prune"
	JobCheck   = "check"
	JobStaging = "staging"
)

// Record is what is known about one job's runs.
type Record struct {
	Job string `json:"job"`           // JobBackup, JobPrune, ...
	Env string `json:"env,omitempty"` // for per-environment jobs

	LastStart time.Time `json:"last_start,omitzero"`
	LastEnd   time.Time `json:"last_end,omitzero"`
	Result    string    `json:"result,omitempty"`
	Error     string    `json:"error,omitempty"` // of the last run, when it failed
	Attempt   int       `json:"attempt,omitempty"`

	LastSuccess  time.Time `json:"last_success,omitzero"`
	LastSnapshot string    `json:"last_snapshot,omitempty"`
	// LastDuration and LastAddedBytes describe the last successful run.
	LastDuration   float64 `json:"last_duration_seconds,omitempty"`
	LastAddedBytes int64   `json:"last_added_bytes,omitempty"`

	// ConsecutiveFailures counts failed attempts since the last success.
	ConsecutiveFailures int `json:"consecutive_failures,omitempty"`
	// Alerting is set once a failure notification went out and cleared by
	// the recovery notification.
	Alerting bool `json:"alerting,omitempty"`
}

// Name returns the record's key: the environment name for backups,
// ENV.staging for staging refreshes and _JOB for repository-wide jobs.
// Environment names hold only [a-z0-9-], so the keys never collide.
func (r Record) Name() string { return Key(r.Job, r.Env) }

// Key is Record.Name for a job and environment.
func Key(job, env string) string {
	switch {
	case job == JobBackup:
		return env
	case env != "":
		return env + "." + job
	default:
		return "_" + job
	}
}

// Failed reports whether the last finished run failed.
func (r Record) Failed() bool { return r.Result == Failed }

// Store is a state folder. It is safe for concurrent use within one
// process; one service process owns a folder.
type Store struct {
	dir string
	mu  sync.Mutex
}

// Open opens (creating it when missing) the state folder dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open state folder %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Reader returns a store for reading only: a missing folder reads as empty
// and is not created (mbackup status on a host where serve never ran).
func Reader(dir string) *Store { return &Store{dir: dir} }

// Dir returns the folder.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(key string) string { return filepath.Join(s.dir, key+".json") }

// Load returns the record named key; the zero Record (with Job and Env
// unset) when there is none.
func (s *Store) Load(key string) (Record, error) {
	data, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("read state %s: %w", key, err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("read state %s: %s: %w", key, s.path(key), err)
	}
	return r, nil
}

// All returns every record by key. Files that are not records are
// skipped; a record that does not decode is an error naming it.
func (s *Store) All() (map[string]Record, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state folder %s: %w", s.dir, err)
	}
	out := make(map[string]Record, len(ents))
	var errs []error
	for _, e := range ents {
		key, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !e.Type().IsRegular() || strings.HasPrefix(key, ".") {
			continue
		}
		r, err := s.Load(key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[key] = r
	}
	return out, errors.Join(errs...)
}

// Update loads the record of job and env, lets fn change it and saves it,
// returning the saved record. Updates within the process are serialised.
func (s *Store) Update(job, env string, fn func(*Record)) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := Key(job, env)
	r, err := s.Load(key)
	if err != nil {
		// A corrupt record (e.g. a disk error) must not stop backups:
		// start afresh and let the write replace it.
		r = Record{}
	}
	r.Job, r.Env = job, env
	fn(&r)
	if werr := s.save(key, r); werr != nil {
		return r, werr
	}
	return r, nil
}

// save writes the record atomically: temp file, fsync, rename, fsync of
// the folder.
func (s *Store) save(key string, r Record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	f, err := os.CreateTemp(s.dir, "."+key+".*.tmp")
	if err != nil {
		return fmt.Errorf("write state %s: %w", key, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write state %s: %w", key, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write state %s: %w", key, err)
	}
	if err := os.Rename(tmp, s.path(key)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write state %s: %w", key, err)
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("write state %s: sync folder: %w", key, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write state %s: sync folder: %w", key, err)
	}
	return nil
}

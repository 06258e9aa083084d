package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
)

// Lock timing. A session rewrites its lock file every LockRefresh; a lock
// not rewritten for LockStale is considered abandoned (its process died).
// A session that could not refresh for LockStale minus a margin refuses to
// commit, because prune may by then have treated it as dead.
const (
	LockRefresh = time.Minute
	LockStale   = 10 * time.Minute
)

// Lock is the content of a lock file.
type Lock struct {
	Kind        string    `json:"kind"` // backup, prune, restore
	Description string    `json:"description,omitempty"`
	Hostname    string    `json:"hostname"`
	PID         int       `json:"pid"`
	Started     time.Time `json:"started"`
	Refreshed   time.Time `json:"refreshed"`
	// Pins lists snapshots the session is reading (a restore): forget
	// keeps them while the lock is live.
	Pins []blob.ID `json:"pins,omitempty"`

	// Name is the lock file's name; ModTime is the storage's time of the
	// last refresh, which is what staleness is judged on (one clock for
	// all readers).
	Name    string    `json:"-"`
	ModTime time.Time `json:"-"`
	// Ended is set by Locks when the lock belongs to a session this
	// Repository has closed: the file is a leftover (its removal failed,
	// or a delayed refresh wrote it again afterwards).
	Ended bool `json:"-"`
}

// Stale reports whether the lock was last refreshed more than LockStale
// before now, belongs to a session known to have ended, or belongs to a
// process of this host that no longer exists (killed: it could not remove
// its lock).
func (l Lock) Stale(now time.Time) bool {
	if l.Ended {
		return true
	}
	if host, _ := os.Hostname(); host != "" && l.Hostname == host && l.PID > 0 && !processAlive(l.PID) {
		return true
	}
	t := l.ModTime
	if l.Refreshed.After(t) {
		t = l.Refreshed
	}
	return now.Sub(t) > LockStale
}

// Session is a writer's registration with the repository. Backups (and
// anything else that adds data and commits snapshots) run inside one, so
// that prune knows which writers might hold an older view of the index:
//
//  1. StartSession writes a lock file and only then refreshes the index.
//  2. Blobs are saved; the lock is rewritten every LockRefresh.
//  3. Commit flushes packs and index, checks that no upload failed and
//     that the lock never went stale, saves the snapshot, and then
//     re-indexes any pack that prune marked for deletion meanwhile but the
//     snapshot needs (see package engine's prune protocol in Prune).
//  4. Close removes the lock file.
//
// A reading session (a restore) pins the snapshots it reads; starting it
// re-indexes marked packs those snapshots need, as Commit does.
type Session struct {
	r       *Repository
	lock    Lock
	started time.Time
	fails   int64

	mu          sync.Mutex
	lastRefresh time.Time
	refreshErr  error
	stop        chan struct{}
	stopped     chan struct{}
	closeOnce   sync.Once
}

func newLockName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *Repository) writeLock(ctx context.Context, l *Lock) error {
	l.Refreshed = time.Now().UTC()
	plain, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return r.SaveNamed(ctx, backend.LockFile, l.Name, plain)
}

// StartSession registers a session of the given kind and refreshes the
// index. pins names snapshots the session reads, which forget must keep.
func (r *Repository) StartSession(ctx context.Context, kind, description string, pins ...blob.ID) (*Session, error) {
	host, _ := os.Hostname()
	now := time.Now().UTC()
	s := &Session{
		r:           r,
		lock:        Lock{Kind: kind, Description: description, Hostname: host, PID: os.Getpid(), Started: now, Name: newLockName(), Pins: pins},
		started:     now,
		lastRefresh: now,
		stop:        make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	s.fails, _ = r.UploadFailures()
	if err := r.writeLock(ctx, &s.lock); err != nil {
		return nil, fmt.Errorf("start %s session: write lock: %w", kind, err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		_ = r.be.Remove(context.WithoutCancel(ctx), backend.Handle{Type: backend.LockFile, Name: s.lock.Name})
		return nil, fmt.Errorf("start %s session: %w", kind, err)
	}
	// A snapshot committed while a prune was marking may, until that
	// prune finishes, have data in marked packs only: index them now, or
	// reading the snapshot would fail for a while.
	for _, id := range pins {
		sn, err := r.LoadSnapshot(ctx, id)
		if err == nil {
			err = r.recoverMarked(ctx, sn)
		}
		if err != nil {
			r.log.Warn("re-indexing marked packs for a pinned snapshot failed", "snapshot", id.Short(), "err", err)
		}
	}
	go s.refresher()
	return s, nil
}

func (s *Session) refresher() {
	defer close(s.stopped)
	t := time.NewTicker(LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), LockRefresh)
			err := s.r.writeLock(ctx, &s.lock)
			cancel()
			s.mu.Lock()
			if err != nil {
				s.refreshErr = err
				s.r.log.Warn("lock refresh failed", "lock", s.lock.Name[:8], "err", err)
			} else {
				s.lastRefresh = time.Now()
				s.refreshErr = nil
			}
			s.mu.Unlock()
		}
	}
}

// Started returns when the session began.
func (s *Session) Started() time.Time { return s.started }

// healthy returns an error when the session must not commit.
func (s *Session) healthy() error {
	s.mu.Lock()
	last, rerr := s.lastRefresh, s.refreshErr
	s.mu.Unlock()
	if time.Since(last) > LockStale-LockRefresh {
		return fmt.Errorf("the session's lock could not be refreshed since %s (%v); prune may treat this writer as dead, so nothing is committed", last.Format(time.RFC3339), rerr)
	}
	n, err := s.r.UploadFailures()
	if n != s.fails {
		return fmt.Errorf("a pack upload failed during this session, so nothing is committed: %w", err)
	}
	return nil
}

// ErrNotCommitted wraps every reason Commit refuses to commit.
var ErrNotCommitted = errors.New("snapshot not committed")

// Commit makes everything saved in the session durable and then saves the
// snapshot, the commit point. If anything fails nothing is committed, and
// the data saved so far is merely unreferenced.
func (s *Session) Commit(ctx context.Context, sn *Snapshot) (blob.ID, error) {
	if err := s.healthy(); err != nil {
		return blob.ID{}, fmt.Errorf("%w: %w", ErrNotCommitted, err)
	}
	if err := s.r.Flush(ctx); err != nil {
		return blob.ID{}, fmt.Errorf("%w: %w", ErrNotCommitted, err)
	}
	if err := s.healthy(); err != nil {
		return blob.ID{}, fmt.Errorf("%w: %w", ErrNotCommitted, err)
	}
	id, err := s.r.saveSnapshot(ctx, sn)
	if err != nil {
		return blob.ID{}, fmt.Errorf("%w: %w", ErrNotCommitted, err)
	}
	if err := s.r.recoverMarked(ctx, sn); err != nil {
		// The snapshot is committed; the next prune's sweep also recovers
		// what it needs, so this is a warning, not a failure.
		s.r.log.Warn("re-indexing packs marked by a concurrent prune failed; the next prune recovers them", "snapshot", id.Short(), "err", err)
	}
	return id, nil
}

// Close ends the session and removes its lock file. The session is
// recorded as ended first: should the file stay behind, this Repository's
// prune (a long-running service runs every job through one) does not wait
// LockStale for it.
func (s *Session) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.stopped
		s.r.ended.add(s.lock.Name, time.Now())
		err = s.r.be.Remove(context.WithoutCancel(ctx), backend.Handle{Type: backend.LockFile, Name: s.lock.Name})
	})
	return err
}

// endedSessions remembers the sessions a Repository closed for LockStale,
// after which their leftover lock files are stale by age anyway.
type endedSessions struct {
	mu    sync.Mutex
	names map[string]time.Time
}

func (e *endedSessions) add(name string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.names == nil {
		e.names = make(map[string]time.Time)
	}
	for n, t := range e.names {
		if now.Sub(t) > LockStale {
			delete(e.names, n)
		}
	}
	e.names[name] = now
}

func (e *endedSessions) has(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.names[name]
	return ok
}

// Locks lists the lock files in the repository. Unreadable lock files are
// reported as stale locks of kind "unreadable".
func (r *Repository) Locks(ctx context.Context) ([]Lock, error) {
	var infos []backend.FileInfo
	if err := r.be.List(ctx, backend.LockFile, func(fi backend.FileInfo) error {
		infos = append(infos, fi)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	locks := make([]Lock, 0, len(infos))
	for _, fi := range infos {
		plain, err := r.LoadNamed(ctx, backend.LockFile, fi.Name)
		if backend.IsNotExist(err) {
			continue // released meanwhile
		}
		var l Lock
		if err != nil || json.Unmarshal(plain, &l) != nil {
			l = Lock{Kind: "unreadable"}
		}
		l.Name, l.ModTime, l.Ended = fi.Name, fi.ModTime, r.ended.has(fi.Name)
		locks = append(locks, l)
	}
	return locks, nil
}

// RemoveLock deletes a lock file (for `unlock` of stale locks).
func (r *Repository) RemoveLock(ctx context.Context, name string) error {
	return r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: name})
}

// Pinned returns the snapshots pinned by live (not stale) sessions.
func (r *Repository) Pinned(ctx context.Context) (blob.Set, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	pins := blob.NewSet()
	now := time.Now()
	for _, l := range locks {
		if l.Stale(now) {
			continue
		}
		for _, id := range l.Pins {
			pins.Insert(id)
		}
	}
	return pins, nil
}

// LockName returns the name of the session's lock file.
func (s *Session) LockName() string { return s.lock.Name }

// processAlive reports whether a process with this PID exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

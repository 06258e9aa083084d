package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
)

// Snapshot is a committed point-in-time copy: a root tree plus metadata.
// Meta belongs to the layer above the engine (the Moodle snapshot package
// keeps its manifest there); the engine stores it opaquely.
type Snapshot struct {
	Time     time.Time       `json:"time"`
	Source   string          `json:"source"`
	Hostname string          `json:"hostname"`
	Tags     []string        `json:"tags,omitempty"`
	Parent   *blob.ID        `json:"parent,omitempty"`
	Tree     blob.ID         `json:"tree"`
	Meta     json.RawMessage `json:"meta,omitempty"`

	id blob.ID
}

// ID returns the snapshot's ID (the name of its file), set once saved or
// loaded.
func (s *Snapshot) ID() blob.ID { return s.id }

// HasTag reports whether the snapshot carries tag.
func (s *Snapshot) HasTag(tag string) bool { return slices.Contains(s.Tags, tag) }

// saveSnapshot stores a snapshot file. Callers commit through Session.
func (r *Repository) saveSnapshot(ctx context.Context, sn *Snapshot) (blob.ID, error) {
	if sn.Tree.IsNull() {
		return blob.ID{}, errors.New("save snapshot: no tree")
	}
	plain, err := json.Marshal(sn)
	if err != nil {
		return blob.ID{}, err
	}
	id, err := r.SaveUnpacked(ctx, backend.SnapshotFile, plain)
	if err != nil {
		return blob.ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	sn.id = id
	return id, nil
}

// LoadSnapshot loads one snapshot.
func (r *Repository) LoadSnapshot(ctx context.Context, id blob.ID) (*Snapshot, error) {
	plain, err := r.LoadUnpacked(ctx, backend.SnapshotFile, id)
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id.Short(), err)
	}
	sn := &Snapshot{}
	if err := json.Unmarshal(plain, sn); err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w: %v", id.Short(), ErrDamaged, err)
	}
	sn.id = id
	return sn, nil
}

// DamagedSnapshotError lists snapshot files that could not be loaded.
type DamagedSnapshotError struct {
	IDs  []blob.ID
	Errs []error
}

func (e *DamagedSnapshotError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d snapshot file(s) unreadable: ", len(e.IDs))
	for i, err := range e.Errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Snapshots loads every snapshot, oldest first (ties by ID). Snapshot files
// that fail to load are skipped and reported in a *DamagedSnapshotError
// returned alongside the ones that loaded.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	var ids []blob.ID
	if err := r.List(ctx, backend.SnapshotFile, func(id blob.ID, _ int64) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var (
		mu      sync.Mutex
		out     []*Snapshot
		damaged DamagedSnapshotError
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, id := range ids {
		g.Go(func() error {
			sn, err := r.LoadSnapshot(gctx, id)
			mu.Lock()
			defer mu.Unlock()
			if backend.IsNotExist(err) {
				return nil // forgotten between listing and loading
			}
			if err != nil {
				if gctx.Err() != nil || !errors.Is(err, ErrDamaged) {
					return err
				}
				damaged.IDs = append(damaged.IDs, id)
				damaged.Errs = append(damaged.Errs, err)
				return nil
			}
			out = append(out, sn)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	SortSnapshots(out)
	if len(damaged.IDs) > 0 {
		return out, &damaged
	}
	return out, nil
}

// SortSnapshots orders snapshots oldest first, ties broken by ID.
func SortSnapshots(sns []*Snapshot) {
	slices.SortFunc(sns, func(a, b *Snapshot) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return a.id.Compare(b.id)
	})
}

// ErrAmbiguous says that an ID prefix matches several snapshots.
var ErrAmbiguous = errors.New("prefix matches several snapshots")

// FindSnapshot resolves a unique ID prefix (at least 4 hex digits).
func (r *Repository) FindSnapshot(ctx context.Context, prefix string) (blob.ID, error) {
	prefix = strings.ToLower(strings.TrimSpace(prefix))
	if len(prefix) < 4 {
		return blob.ID{}, fmt.Errorf("snapshot ID %q is too short: give at least 4 hex digits", prefix)
	}
	var match []blob.ID
	if err := r.List(ctx, backend.SnapshotFile, func(id blob.ID, _ int64) error {
		if strings.HasPrefix(id.String(), prefix) {
			match = append(match, id)
		}
		return nil
	}); err != nil {
		return blob.ID{}, err
	}
	switch len(match) {
	case 0:
		return blob.ID{}, fmt.Errorf("no snapshot with ID %s: %w", prefix, backend.ErrNotExist)
	case 1:
		return match[0], nil
	}
	return blob.ID{}, fmt.Errorf("snapshot ID %s: %w (%d): give more digits", prefix, ErrAmbiguous, len(match))
}

// RemoveSnapshot deletes a snapshot file. Its data stays until prune.
func (r *Repository) RemoveSnapshot(ctx context.Context, id blob.ID) error {
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: id.String()}); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", id.Short(), err)
	}
	return nil
}

package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/tree"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

// Names of the root tree's entries.
const (
	DumpName       = "database.pgdump"
	MoodledataName = "moodledata"
	ConfigPHPName  = "config.php"
)

// Manifest is the Moodle-specific metadata of a snapshot.
type Manifest struct {
	Env      string     `json:"env"`
	Started  time.Time  `json:"started"`
	Finished time.Time  `json:"finished"`
	Database *DBStats   `json:"database,omitempty"`
	Files    *FileStats `json:"files,omitempty"`
	// ConfigPHP is the size of config.php when it was backed up.
	ConfigPHP *int64 `json:"config_php,omitempty"`
	// Maintenance is true when climaintenance.html existed at backup
	// time: the site was in CLI maintenance mode.
	Maintenance bool `json:"maintenance,omitempty"`
	// AddedBytes is what this snapshot added to the repository after
	// deduplication and compression.
	AddedBytes     int64  `json:"added_bytes"`
	Warnings       int    `json:"warnings,omitempty"`
	MbackupVersion string `json:"mbackup_version,omitempty"`
}

// DBStats describes the database part.
type DBStats struct {
	postgres.DumpInfo
	DumpBytes  int64         `json:"dump_bytes"`
	AddedBytes int64         `json:"added_bytes"`
	Duration   time.Duration `json:"duration_ns"`
}

// FileStats describes the moodledata part.
type FileStats struct {
	Root       string        `json:"root"`
	Exclude    []string      `json:"exclude"`
	Files      int64         `json:"files"`
	Dirs       int64         `json:"dirs"`
	Symlinks   int64         `json:"symlinks"`
	Bytes      int64         `json:"bytes"`
	ReadBytes  int64         `json:"read_bytes"`
	Unchanged  int64         `json:"unchanged"`
	AddedBytes int64         `json:"added_bytes"`
	Warnings   int64         `json:"warnings"`
	Duration   time.Duration `json:"duration_ns"`
}

// Snapshot is a loaded snapshot with its manifest.
type Snapshot struct {
	*engine.Snapshot
	Manifest Manifest
}

// ID returns the snapshot's ID.
func (s *Snapshot) ID() blob.ID { return s.Snapshot.ID() }

// Env returns the environment the snapshot belongs to.
func (s *Snapshot) Env() string { return s.Source }

// ErrNotMoodle says that a snapshot was not made by this package.
var ErrNotMoodle = errors.New("not an environment snapshot")

// FromEngine decodes the manifest of an engine snapshot.
func FromEngine(sn *engine.Snapshot) (*Snapshot, error) {
	s := &Snapshot{Snapshot: sn}
	if len(sn.Meta) == 0 {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ID().Short(), ErrNotMoodle)
	}
	if err := json.Unmarshal(sn.Meta, &s.Manifest); err != nil {
		return nil, fmt.Errorf("snapshot %s: manifest: %w", sn.ID().Short(), err)
	}
	return s, nil
}

// List loads the snapshots of the environments named (all when none),
// oldest first. Damaged snapshot files are reported in the error alongside
// the snapshots that loaded.
func List(ctx context.Context, repo *engine.Repository, envs ...string) ([]*Snapshot, error) {
	sns, err := repo.Snapshots(ctx)
	var damaged *engine.DamagedSnapshotError
	if err != nil && !errors.As(err, &damaged) {
		return nil, err
	}
	want := make(map[string]bool, len(envs))
	for _, e := range envs {
		want[e] = true
	}
	out := make([]*Snapshot, 0, len(sns))
	for _, sn := range sns {
		if len(want) > 0 && !want[sn.Source] {
			continue
		}
		s, ferr := FromEngine(sn)
		if ferr != nil {
			continue // not ours; the engine may hold other kinds one day
		}
		out = append(out, s)
	}
	return out, err
}

// Load loads one snapshot by ID.
func Load(ctx context.Context, repo *engine.Repository, id blob.ID) (*Snapshot, error) {
	sn, err := repo.LoadSnapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	return FromEngine(sn)
}

// Latest returns the newest snapshot of env, or nil.
func Latest(ctx context.Context, repo *engine.Repository, env string) (*Snapshot, error) {
	sns, err := List(ctx, repo, env)
	if err != nil && len(sns) == 0 {
		return nil, err
	}
	if len(sns) == 0 {
		return nil, nil
	}
	return sns[len(sns)-1], nil
}

// Parts are the root tree's entries of a snapshot.
type Parts struct {
	Dump       *tree.Node // nil when the snapshot has no database
	Moodledata *blob.ID   // root tree of moodledata
	ConfigPHP  *tree.Node
}

// Parts loads the root tree and returns its entries.
func (s *Snapshot) Parts(ctx context.Context, repo *engine.Repository) (*Parts, error) {
	root, err := repo.LoadTree(ctx, s.Tree)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", s.ID().Short(), err)
	}
	p := &Parts{Dump: root.Find(DumpName), ConfigPHP: root.Find(ConfigPHPName)}
	if n := root.Find(MoodledataName); n != nil && n.Type == tree.Dir {
		p.Moodledata = n.Subtree
	}
	return p, nil
}

// ReadFile returns the whole content of a small file node (config.php).
func ReadFile(ctx context.Context, repo *engine.Repository, n *tree.Node) ([]byte, error) {
	var out []byte
	for _, id := range n.Content {
		b, err := repo.LoadBlob(ctx, id, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

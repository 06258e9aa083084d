package snapshot_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

func seedManifests(f *testing.F) [][]byte {
	size := int64(1234)
	ms := []snapshot.Manifest{
		{Env: "client-x", Started: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC), Finished: time.Date(2026, 11, 26, 2, 5, 0, 0, time.UTC),
			Database: &snapshot.DBStats{DumpInfo: postgres.DumpInfo{Format: postgres.DumpFormat, PgDumpVersion: "pg_dump (PostgreSQL) 15.20",
				Server: postgres.ServerInfo{ServerVersion: "15.20", Database: "moodle", SizeBytes: 1 << 20, Encoding: "UTF8"},
				Moodle: &postgres.MoodleInfo{Version: "2022112800", Release: "4.1"}, RowCounts: map[string]int64{"public.mdl_user": 40}},
				DumpBytes: 5 << 20, AddedBytes: 1 << 20, Duration: time.Second},
			Files:     &snapshot.FileStats{Root: "/srv/moodledata", Exclude: snapshot.DefaultExclude(), Files: 30, Bytes: 1 << 20},
			ConfigPHP: &size, Maintenance: true, AddedBytes: 2 << 20, Warnings: 1, MbackupVersion: "dev"},
		{Env: "files-only"},
	}
	var out [][]byte
	for _, m := range ms {
		b, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, []byte(`null`), []byte(`{"database":null,"files":{"files":"many"}}`), []byte(`[]`))
}

// FuzzFromEngine decodes fuzzed manifests: a snapshot written by another
// version or damaged before it was sealed must be an error, not a panic.
func FuzzFromEngine(f *testing.F) {
	for _, m := range seedManifests(f) {
		f.Add(m)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, meta []byte) {
		sn := &engine.Snapshot{Source: "client-x", Tree: blob.Hash([]byte("tree")), Meta: meta}
		s, err := snapshot.FromEngine(sn)
		if err != nil {
			return
		}
		if s.Env() != "client-x" || s.Snapshot != sn {
			t.Fatalf("decoded snapshot lost its engine snapshot: %+v", s)
		}
	})
}

// FuzzLoadSnapshot stores fuzzed snapshot JSON (sealed with the real key)
// and loads it the ways the commands do: by ID, in a listing, as the
// latest of its environment. None may panic; a listing reports what it
// cannot use instead of failing.
func FuzzLoadSnapshot(f *testing.F) {
	be := mem.New()
	repo := snapshottest.NewRepo(f, be)
	ctx := context.Background()
	for _, m := range seedManifests(f) {
		sn := engine.Snapshot{Time: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC), Source: "client-x", Tree: blob.Hash([]byte("t")), Meta: m}
		b, err := json.Marshal(&sn)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"source":"client-x","meta":{"env":1}}`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		id, err := repo.SaveUnpacked(ctx, backend.SnapshotFile, plain)
		if err != nil {
			t.Fatal(err)
		}
		defer be.Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: id.String()})
		s, err := snapshot.Load(ctx, repo, id)
		if err == nil && s.ID() != id {
			t.Fatalf("loaded %s as %s", id.Short(), s.ID().Short())
		}
		sns, _ := snapshot.List(ctx, repo)
		if err == nil && len(sns) != 1 {
			t.Fatalf("a snapshot that loads by ID is missing from the listing")
		}
		if err == nil {
			if latest, lerr := snapshot.Latest(ctx, repo, s.Source); lerr != nil || latest == nil || latest.ID() != id {
				t.Fatalf("Latest(%q): %v, %v", s.Source, latest, lerr)
			}
		}
	})
}

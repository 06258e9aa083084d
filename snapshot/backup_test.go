package snapshot_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/tree"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

func backup(t *testing.T, repo *engine.Repository, src snapshot.Source, opts snapshot.Options) *snapshot.Snapshot {
	t.Helper()
	if opts.Warn == nil {
		opts.Warn = func(msg string) { t.Logf("warning: %s", msg) }
	}
	r, err := snapshot.Backup(context.Background(), repo, src, opts)
	if err != nil {
		t.Fatalf("backup %s: %v", src.Env, err)
	}
	return r.Snapshot
}

func TestNightlyBackupStoresLittle(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-a", moodlegen.Demo())
	repo := snapshottest.NewLocalRepo(t)
	s1 := backup(t, repo, env.Source(), snapshot.Options{})
	m1 := s1.Manifest
	envSize := m1.Database.DumpBytes + m1.Files.Bytes
	if m1.Database.RowCounts["public.mdl_logstore_standard_log"] != int64(env.Spec.LogRows) {
		t.Errorf("row counts: %v", m1.Database.RowCounts)
	}
	if m1.Database.Moodle == nil || m1.Database.Moodle.Version == "" || m1.Database.Server.ServerVersion == "" || m1.Database.PgDumpVersion == "" {
		t.Errorf("versions not recorded: %+v", m1.Database)
	}

	env.Mutate(t, 2)
	s2 := backup(t, repo, env.Source(), snapshot.Options{})
	m2 := s2.Manifest
	if s2.Parent == nil || *s2.Parent != s1.ID() {
		t.Errorf("second snapshot's parent is %v, want %s", s2.Parent, s1.ID().Short())
	}
	if m2.AddedBytes*10 >= envSize {
		t.Errorf("after a day of 1%% changes the snapshot added %d bytes, environment is %d bytes (want < 10%%)", m2.AddedBytes, envSize)
	}
	if m2.Files.Unchanged < m2.Files.Files*9/10 {
		t.Errorf("only %d of %d files were recognised as unchanged", m2.Files.Unchanged, m2.Files.Files)
	}
	t.Logf("environment %d bytes; night 1 added %d, night 2 added %d (%.2f%%)", envSize, m1.AddedBytes, m2.AddedBytes, 100*float64(m2.AddedBytes)/float64(envSize))

	// The snapshot holds dump, moodledata minus excludes, config.php.
	parts, err := s2.Parts(context.Background(), repo)
	if err != nil {
		t.Fatal(err)
	}
	if parts.Dump == nil || parts.ConfigPHP == nil || parts.Moodledata == nil {
		t.Fatalf("parts missing: %+v", parts)
	}
	root, err := repo.LoadTree(context.Background(), *parts.Moodledata)
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range snapshot.DefaultExclude() {
		if root.Find(ex) != nil {
			t.Errorf("excluded %s is in the snapshot", ex)
		}
	}
	for _, keep := range []string{"filedir", "trashdir", "lang", "muc", "secret"} {
		if n := root.Find(keep); n == nil || n.Type != tree.Dir {
			t.Errorf("%s missing from the snapshot", keep)
		}
	}
}

func snapshotCount(t *testing.T, repo *engine.Repository) int {
	t.Helper()
	sns, err := repo.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(sns)
}

func TestDumpFailureCommitsNothing(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-b", moodlegen.Demo())
	repo := snapshottest.NewLocalRepo(t)

	t.Run("wrong database name", func(t *testing.T) {
		src := env.Source()
		src.DB = &postgres.DB{URL: strings.Replace(env.DBURL, env.DBName, env.DBName+"_missing", 1)}
		_, err := snapshot.Backup(context.Background(), repo, src, snapshot.Options{})
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("want a missing-database error, got %v", err)
		}
		if n := snapshotCount(t, repo); n != 0 {
			t.Fatalf("%d snapshots committed", n)
		}
	})

	t.Run("connection killed mid-dump", func(t *testing.T) {
		var killed atomic.Bool
		opts := snapshot.Options{Progress: func(p snapshot.Progress) {
			if p.Phase != "database" || p.Bytes == 0 || killed.Swap(true) {
				return
			}
			// pg_dump is blocked on the pipe we read: end its session.
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, snapshottest.AdminURL())
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(ctx)
			var n int
			err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = $1 AND application_name = 'pg_dump'`, env.DBName).Scan(&n)
			if err != nil || n == 0 {
				t.Errorf("terminate pg_dump: %d sessions, %v", n, err)
			}
		}}
		_, err := snapshot.Backup(context.Background(), repo, env.Source(), opts)
		if err == nil || !strings.Contains(err.Error(), "pg_dump") {
			t.Fatalf("want a pg_dump failure, got %v", err)
		}
		if !killed.Load() {
			t.Fatal("the dump was never interrupted")
		}
		if n := snapshotCount(t, repo); n != 0 {
			t.Fatalf("%d snapshots committed after a failed dump", n)
		}
	})

	t.Run("moodledata missing", func(t *testing.T) {
		src := env.Source()
		src.Moodledata += "-gone"
		_, err := snapshot.Backup(context.Background(), repo, src, snapshot.Options{})
		if err == nil || !strings.Contains(err.Error(), "moodledata") {
			t.Fatalf("want a moodledata error, got %v", err)
		}
		if n := snapshotCount(t, repo); n != 0 {
			t.Fatalf("%d snapshots committed", n)
		}
	})

	// And the next backup works.
	backup(t, repo, env.Source(), snapshot.Options{})
	if n := snapshotCount(t, repo); n != 1 {
		t.Fatalf("%d snapshots, want 1", n)
	}
}

func TestIdenticalFilesAcrossEnvironmentsStoredOnce(t *testing.T) {
	repo := snapshottest.NewLocalRepo(t)
	spec := moodlegen.Demo()
	var added []int64
	for _, name := range []string{"site-1", "site-2", "site-3"} {
		env := snapshottest.NewEnv(t, name, spec) // same seed: the same files
		s := backup(t, repo, env.Source(), snapshot.Options{})
		added = append(added, s.Manifest.Files.AddedBytes)
	}
	if added[0] == 0 || added[1]*20 > added[0] || added[2]*20 > added[0] {
		t.Errorf("moodledata added %v bytes: the second and third sites should store almost nothing", added)
	}
}

func TestCancelledBackupCommitsNothing(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-c", moodlegen.Tiny())
	repo := snapshottest.NewLocalRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := snapshot.Backup(ctx, repo, env.Source(), snapshot.Options{Progress: func(p snapshot.Progress) {
		if p.Phase == "files" {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if n := snapshotCount(t, repo); n != 0 {
		t.Fatalf("%d snapshots committed", n)
	}
	var locks int
	repo.Backend().List(context.Background(), backend.LockFile, func(backend.FileInfo) error { locks++; return nil })
	if locks != 0 {
		t.Errorf("%d lock files left behind", locks)
	}
}

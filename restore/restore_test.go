package restore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/fault"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/backend/s3/s3test"
	"github.com/mbackup/mbackup/engine/restorer"
	"github.com/mbackup/mbackup/restore"
	"github.com/mbackup/mbackup/restore/when"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

var day1 = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)

func backupAt(t *testing.T, repo *engine.Repository, env *snapshottest.Env, at time.Time) *snapshot.Snapshot {
	t.Helper()
	r, err := snapshot.Backup(context.Background(), repo, env.Source(), snapshot.Options{Time: at})
	if err != nil {
		t.Fatal(err)
	}
	return r.Snapshot
}

func target(env *snapshottest.Env) restore.Target {
	return restore.Target{Name: env.Name, DB: env.DB(), Moodledata: env.Moodledata, Exclude: snapshot.DefaultExclude()}
}

// state is everything a restore must give back or leave alone.
type state struct {
	dump  []byte
	files map[string]string
}

func capture(t *testing.T, env *snapshottest.Env) state {
	return state{dump: snapshottest.PlainDump(t, env.DBURL), files: env.Files(t)}
}

func (s state) mustEqual(t *testing.T, got state, what string) {
	t.Helper()
	if !bytes.Equal(s.dump, got.dump) {
		t.Errorf("%s: database dump differs (%d vs %d bytes)", what, len(s.dump), len(got.dump))
	}
	if d := moodlegen.DiffTrees(s.files, got.files); len(d) > 0 {
		if len(d) > 10 {
			d = d[:10]
		}
		t.Errorf("%s: moodledata differs:\n%s", what, strings.Join(d, "\n"))
	}
}

// twoDays backs up day 1, changes, backs up day 2, changes again, and
// returns the state of day 1.
func twoDays(t *testing.T, repo *engine.Repository, env *snapshottest.Env) state {
	backupAt(t, repo, env, day1)
	want := capture(t, env)
	env.Mutate(t, 2)
	backupAt(t, repo, env, day1.Add(24*time.Hour))
	env.Mutate(t, 3)
	return want
}

func pick(t *testing.T, repo *engine.Repository, env string, expr string) *snapshot.Snapshot {
	t.Helper()
	sns, err := snapshot.List(context.Background(), repo, env)
	if err != nil {
		t.Fatal(err)
	}
	at, err := when.Parse(expr, day1.Add(72*time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := when.Select(sns, func(s *snapshot.Snapshot) time.Time { return s.Time }, func(s *snapshot.Snapshot) string { return s.ID().String() }, at)
	if err != nil {
		t.Fatal(err)
	}
	return sn
}

func TestRestoreInPlaceGivesBackDay1(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-x", moodlegen.Demo())
	repo := snapshottest.NewLocalRepo(t)
	want := twoDays(t, repo, env)
	// Sessions and a stale maintenance flag must not stop the restore.
	os.WriteFile(filepath.Join(env.Moodledata, "cache", "stale"), []byte("x"), 0o644)

	sn := pick(t, repo, env.Name, "2026-11-26 12:00")
	if !sn.Time.Equal(day1) {
		t.Fatalf("--at between the days chose %v", sn.Time)
	}
	now := day1.Add(50 * time.Hour)
	rep, err := restore.InPlace(context.Background(), repo, sn, target(env), restore.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	want.mustEqual(t, capture(t, env), "after restore")
	if rep.TablesVerified == 0 || rep.FilesVerified == 0 {
		t.Errorf("nothing verified: %+v", rep)
	}
	kept := env.DBName + "_before_restore_" + now.Format("20060102150405")
	if dbs := snapshottest.Databases(t, env.DBName); len(dbs) != 2 || dbs[1] != kept {
		t.Errorf("databases after restore: %v, want the previous one kept as %s", dbs, kept)
	}
	if _, err := os.Stat(filepath.Join(env.Moodledata, "climaintenance.html")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("maintenance mode still on: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(env.Moodledata, "cache")); len(entries) != 0 {
		t.Errorf("cache not emptied: %d entries", len(entries))
	}
	// Restoring again changes nothing in moodledata.
	rep, err = restore.InPlace(context.Background(), repo, sn, target(env), restore.Options{FilesOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Files.Write) != 0 || len(rep.Files.Delete) != 0 {
		t.Errorf("second restore wrote %d and deleted %d files", len(rep.Files.Write), len(rep.Files.Delete))
	}
}

func TestRestoreDryRunChangesNothing(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-d", moodlegen.Tiny())
	repo := snapshottest.NewLocalRepo(t)
	twoDays(t, repo, env)
	before := capture(t, env)
	rep, err := restore.InPlace(context.Background(), repo, pick(t, repo, env.Name, "2026-11-26"), target(env), restore.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	before.mustEqual(t, capture(t, env), "after dry run")
	if rep.Database == nil || rep.Database.New == "" || len(rep.Files.Write)+len(rep.Files.Delete) == 0 || rep.FetchBytes == 0 {
		t.Errorf("dry run plan incomplete: %+v %+v", rep.Database, rep.Files)
	}
	if dbs := snapshottest.Databases(t, env.DBName); len(dbs) != 1 {
		t.Errorf("dry run created databases: %v", dbs)
	}
}

func TestFailedRestoreLeavesProductionAsItWas(t *testing.T) {
	t.Run("S3 error", func(t *testing.T) {
		env := snapshottest.NewEnv(t, "client-s3", moodlegen.Demo())
		fb := fault.New(s3test.Start(t).Backend(t), 1)
		repo := snapshottest.NewRepo(t, fb)
		twoDays(t, repo, env)
		before := capture(t, env)
		sn := pick(t, repo, env.Name, "2026-11-26")
		// Let the database load, fail while staging moodledata.
		fb.Add(fault.Rule{Op: fault.Load, Type: backend.PackFile, Skip: 4, Err: errors.New("503 Slow Down")})
		_, err := restore.InPlace(context.Background(), repo, sn, target(env), restore.Options{})
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("want the injected S3 error, got %v", err)
		}
		before.mustEqual(t, capture(t, env), "after failed restore")
		if dbs := snapshottest.Databases(t, env.DBName); len(dbs) != 1 {
			t.Errorf("databases left behind: %v", dbs)
		}
		if _, err := os.Stat(filepath.Join(env.Moodledata, "climaintenance.html")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("maintenance mode left on after a failed restore")
		}
	})

	t.Run("disk full", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to mount a small tmpfs")
		}
		mnt := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt).CombinedOutput(); err != nil {
			t.Fatalf("mount tmpfs: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", mnt).Run() })
		env := snapshottest.NewEnv(t, "client-full", moodlegen.Demo())
		moved := filepath.Join(mnt, "moodledata")
		if out, err := exec.Command("cp", "-a", env.Moodledata, moved).CombinedOutput(); err != nil {
			t.Fatalf("copy moodledata: %v %s", err, out)
		}
		env.Moodledata = moved
		repo := snapshottest.NewLocalRepo(t)
		twoDays(t, repo, env)
		// Leave almost no room: the files to put back do not fit.
		var st syscall.Statfs_t
		syscall.Statfs(mnt, &st)
		free := int64(st.Bavail) * st.Bsize
		filler := bytes.Repeat([]byte{1}, int(free-64<<10))
		if err := os.WriteFile(filepath.Join(moved, "cache", "filler"), filler, 0o644); err != nil {
			t.Fatal(err)
		}
		before := capture(t, env)
		_, err := restore.InPlace(context.Background(), repo, pick(t, repo, env.Name, "2026-11-26"), target(env), restore.Options{})
		if err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Fatalf("want ENOSPC, got %v", err)
		}
		before.mustEqual(t, capture(t, env), "after disk-full restore")
		if dbs := snapshottest.Databases(t, env.DBName); len(dbs) != 1 {
			t.Errorf("databases left behind: %v", dbs)
		}
	})

	t.Run("killed", func(t *testing.T) {
		for _, phase := range []string{"database", "files"} {
			t.Run(phase, func(t *testing.T) {
				env := snapshottest.NewEnv(t, "client-kill", moodlegen.Demo())
				dir := t.TempDir()
				be, _ := local.Open(dir)
				repo := snapshottest.NewRepo(t, be)
				twoDays(t, repo, env)
				before := capture(t, env)
				sn := pick(t, repo, env.Name, "2026-11-26")
				cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRestoreChild$")
				cmd.Env = append(os.Environ(), "RESTORE_CHILD=1", "REPO="+dir, "SNAP="+sn.ID().String(),
					"DBURL="+env.DBURL, "MOODLEDATA="+env.Moodledata, "PHASE="+phase)
				out, err := cmd.CombinedOutput()
				ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if err == nil || !ws.Signaled() {
					t.Fatalf("child was not killed: %v\n%s", err, out)
				}
				// The database and the files are as they were. Left behind:
				// the maintenance flag, so nobody uses the site until an
				// operator restores again, hidden staged files, which no
				// backup stores, and a partial new database.
				os.Remove(filepath.Join(env.Moodledata, "climaintenance.html"))
				after := capture(t, env)
				temps := 0
				for p := range after.files {
					if strings.Contains(p, restorer.TempMarker) {
						delete(after.files, p)
						temps++
					}
				}
				t.Logf("killed in the %s phase: %d staged files left", phase, temps)
				before.mustEqual(t, after, "after killed restore")
				// The next restore cleans up and succeeds.
				if _, err := restore.InPlace(context.Background(), repo, sn, target(env), restore.Options{}); err != nil {
					t.Fatal(err)
				}
				if dbs := snapshottest.Databases(t, env.DBName+"_restore_"); len(dbs) != 0 {
					t.Errorf("leftover databases: %v", dbs)
				}
				for p := range env.Files(t) {
					if strings.Contains(p, restorer.TempMarker) {
						t.Errorf("staged file left after the next restore: %s", p)
					}
				}
			})
		}
	})
}

// TestKilledRestoreChild runs in a child process: a restore that kills
// itself while fetching data in the given phase.
func TestKilledRestoreChild(t *testing.T) {
	if os.Getenv("RESTORE_CHILD") == "" {
		return
	}
	lb, _ := local.Open(os.Getenv("REPO"))
	fb := fault.New(lb, 1)
	repo, err := engine.Open(context.Background(), fb, snapshottest.Password, snapshottest.TestOptions())
	if err != nil {
		t.Fatal(err)
	}
	skip := 3
	opts := restore.Options{}
	if os.Getenv("PHASE") == "files" {
		opts.FilesOnly = true
		skip = 1
	}
	fb.Add(fault.Rule{Op: fault.Load, Type: backend.PackFile, Skip: skip, Hook: func(fault.Op, backend.Handle) {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}})
	id, _ := repo.FindSnapshot(context.Background(), os.Getenv("SNAP"))
	sn, err := snapshot.Load(context.Background(), repo, id)
	if err != nil {
		t.Fatal(err)
	}
	env := &snapshottest.Env{Name: "killed", DBURL: os.Getenv("DBURL"), Moodledata: os.Getenv("MOODLEDATA")}
	_, err = restore.InPlace(context.Background(), repo, sn, target(env), opts)
	fmt.Println("restore returned", err)
	os.Exit(3)
}

func TestTargetDirLoadsWithPsql(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-dir", moodlegen.Demo())
	repo := snapshottest.NewLocalRepo(t)
	want := twoDays(t, repo, env)
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := restore.ToDir(context.Background(), repo, pick(t, repo, env.Name, "2026-11-26"), dir, restore.Options{}); err != nil {
		t.Fatal(err)
	}
	files, err := moodlegen.TreeDigest(filepath.Join(dir, "moodledata"), snapshot.DefaultExclude())
	if err != nil {
		t.Fatal(err)
	}
	if d := moodlegen.DiffTrees(want.files, files); len(d) > 0 {
		t.Errorf("moodledata differs: %v", d)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "config.php")); !bytes.Contains(got, []byte("$CFG->dbname")) {
		t.Errorf("config.php missing or wrong")
	}
	// Load db.sql into an empty database with psql.
	empty := env.DBName + "_psql"
	if out, err := exec.Command("createdb", "-h", "127.0.0.1", "-U", "postgres", "-T", "template0", empty).CombinedOutput(); err != nil {
		t.Fatalf("createdb: %v %s", err, out)
	}
	url := strings.Replace(env.DBURL, "/"+env.DBName, "/"+empty, 1)
	if out, err := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", filepath.Join(dir, "db.sql")).CombinedOutput(); err != nil {
		t.Fatalf("psql -f db.sql: %v %s", err, out)
	}
	if !bytes.Equal(snapshottest.PlainDump(t, url), want.dump) {
		t.Errorf("database loaded from db.sql differs from day 1")
	}
}

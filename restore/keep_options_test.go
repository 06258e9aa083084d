package restore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mbackup/mbackup/restore"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// KeepMaintenance and DropPrevious, as a staging refresh uses them: the
// site stays closed after the restore and no <name>_before_restore_*
// database is left.
func TestInPlaceKeepMaintenanceDropPrevious(t *testing.T) {
	ctx := context.Background()
	repo := snapshottest.NewLocalRepo(t)
	env := snapshottest.NewEnv(t, "keepopts", moodlegen.Tiny())
	res, err := snapshot.Backup(ctx, repo, env.Source(), snapshot.Options{Time: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	want := env.Digest(t)
	env.Mutate(t, 3)

	tgt := restore.Target{Name: env.Name, DB: env.DB(), Moodledata: env.Moodledata, Exclude: snapshot.DefaultExclude()}
	rep, err := restore.InPlace(ctx, repo, res.Snapshot, tgt, restore.Options{KeepMaintenance: true, DropPrevious: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := want.Diff(env.Digest(t)); len(d) > 0 {
		t.Errorf("database not restored: %v", d)
	}
	if rep.Maintenance != "on" {
		t.Errorf("Maintenance = %q, want on", rep.Maintenance)
	}
	if _, err := os.Stat(filepath.Join(env.Moodledata, "climaintenance.html")); err != nil {
		t.Errorf("maintenance mode not kept: %v", err)
	}
	if rep.Database == nil || rep.Database.KeepAs == "" || !rep.Database.PreviousDropped {
		t.Fatalf("database plan %+v: want the previous database dropped", rep.Database)
	}
	if left := snapshottest.Databases(t, rep.Database.KeepAs); len(left) > 0 {
		t.Errorf("previous database still there: %v", left)
	}

	// Without the options: maintenance off, previous database kept.
	rep, err = restore.InPlace(ctx, repo, res.Snapshot, tgt, restore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(env.Moodledata, "climaintenance.html")); !os.IsNotExist(err) {
		t.Errorf("maintenance mode left on by default (err %v)", err)
	}
	if rep.Database.PreviousDropped || len(snapshottest.Databases(t, rep.Database.KeepAs)) != 1 {
		t.Errorf("previous database not kept by default")
	}
}

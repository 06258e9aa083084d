package restore_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/restore"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// A snapshot whose manifest does not describe its database dump (written
// by another version, or by hand) must fail the restore with a clear error
// before anything is touched, not crash it.
func TestRestoreOfSnapshotWithoutDatabaseManifest(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-oddmeta", moodlegen.Tiny())
	repo := snapshottest.NewLocalRepo(t)
	good := backupAt(t, repo, env, day1)
	ctx := context.Background()
	for _, meta := range []string{`{"env":"client-oddmeta"}`, `{"env":"client-oddmeta","database":null}`} {
		sess, err := repo.StartSession(ctx, "backup", env.Name)
		if err != nil {
			t.Fatal(err)
		}
		id, err := sess.Commit(ctx, &engine.Snapshot{Time: day1.Add(time.Hour), Source: env.Name, Tree: good.Tree, Meta: json.RawMessage(meta)})
		sess.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sn, err := snapshot.Load(ctx, repo, id)
		if err != nil {
			t.Fatal(err)
		}
		before := capture(t, env)
		_, err = restore.InPlace(ctx, repo, sn, target(env), restore.Options{})
		if err == nil {
			// Restoring without row counts to compare is acceptable too,
			// as long as the result is right.
			before.mustEqual(t, capture(t, env), "after restoring a snapshot without database manifest")
			continue
		}
		if !strings.Contains(err.Error(), env.Name) {
			t.Errorf("error does not name the environment: %v", err)
		}
		before.mustEqual(t, capture(t, env), "after a refused restore")
	}
}

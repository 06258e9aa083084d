package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/postgres/pgtest"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// The shared test server trusts every local connection; Jelastic's
// databases do not. Against a server that checks passwords
// (scram-sha-256), with the password only in database_password_file and
// no PGPASSWORD or ~/.pgpass to fall back on: a backup (pg_dump and
// mbackup's own connection in the same snapshot) and a restore in place
// (a fresh database, pg_restore into it, the checks and the swap)
// authenticate and give the state back exactly. A wrong or missing
// password fails in one line that says so, prints no password, commits
// no snapshot and leaves the database as it was.
func TestPasswordCheckingDatabaseCLI(t *testing.T) {
	srv := pgtest.Start(t)
	env := snapshottest.NewEnvOn(t, srv.AdminURL(), "client-pw", moodlegen.Tiny())
	// Nothing from the environment may supply the password.
	t.Setenv("PGPASSWORD", "")
	os.Unsetenv("PGPASSWORD")
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))

	f := newRelFleet(t)
	pwFile := filepath.Join(f.dir, "client-pw.pgpass")
	configure := func(password string, withFile bool) {
		t.Helper()
		if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		block := fmt.Sprintf("  %s:\n    database: %s\n", env.Name, srv.URL(env.DBName))
		if withFile {
			block += fmt.Sprintf("    database_password_file: %s\n", pwFile)
		}
		block += fmt.Sprintf("    moodledata: %s\n    config_php: %s\n", env.Moodledata, env.ConfigPHP)
		if err := os.WriteFile(f.config, []byte(f.yaml()+block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secret := srv.Password
	noSecret := func(what string, outputs ...string) {
		t.Helper()
		for _, o := range outputs {
			if strings.Contains(o, secret) || strings.Contains(o, secret+"-wrong") {
				t.Errorf("%s: the database password was printed:\n%s", what, o)
			}
		}
	}

	configure(secret, true)
	f.mustRun(t, "backup", env.Name)
	sns := f.snapshots(t)
	if len(sns) != 1 {
		t.Fatalf("%d snapshots after one backup", len(sns))
	}
	want := captureRel(t, env)

	env.Mutate(t, 2)
	changed := captureRel(t, env)
	if bytes.Equal(changed.dump, want.dump) {
		t.Fatal("the day of change did not change the database")
	}

	for _, c := range []struct {
		name     string
		password string
		withFile bool
		say      string // the error line must contain it
	}{
		{"wrong password", secret + "-wrong", true, "password authentication failed"},
		{"no password", "", false, "password authentication failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			configure(c.password, c.withFile)
			for _, args := range [][]string{
				{"backup", env.Name},
				{"restore", env.Name, "--yes"},
			} {
				code, out, errOut := f.run(t, args...)
				what := strings.Join(args[:1], " ") + " with " + c.name
				if code != 1 {
					t.Errorf("%s: exit %d, want 1\nstdout: %s\nstderr: %s", what, code, out, errOut)
				}
				for _, say := range []string{c.say, "check database_password_file of " + env.Name} {
					if !strings.Contains(errOut, say) {
						t.Errorf("%s: the error does not say %q:\n%s", what, say, errOut)
					}
				}
				if n := strings.Count(strings.TrimSpace(errOut), "\n"); n > 1 {
					t.Errorf("%s: %d lines of error, want one (and the backup summary):\n%s", what, n+1, errOut)
				}
				relNoCrash(t, what, out, errOut)
				noSecret(what, out, errOut)
			}
			if n := len(f.snapshots(t)); n != 1 {
				t.Errorf("%d snapshots after failed backups, want 1", n)
			}
			got := captureRel(t, env)
			if !bytes.Equal(got.dump, changed.dump) {
				t.Error("a failed restore changed the database")
			}
		})
	}

	configure(secret, true)
	out := f.mustRun(t, "restore", env.Name, "--yes")
	noSecret("restore", out)
	got := captureRel(t, env)
	if !bytes.Equal(got.dump, want.dump) {
		t.Error("restore in place: the database differs from the backed-up state")
	}
	if d := moodlegen.DiffTrees(want.files, got.files); len(d) > 0 {
		t.Errorf("restore in place: moodledata differs: %v", d)
	}
	if dbs := env.Databases(t, env.DBName); len(dbs) != 2 {
		t.Errorf("databases after the restore: %v, want the restored one and the previous one kept", dbs)
	}
}

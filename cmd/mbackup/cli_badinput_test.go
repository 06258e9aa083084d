package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/backend/s3/s3test"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// Every mistake an operator or the infrastructure can make ends in one
// line on stderr that names the thing and says how to fix it, the exit
// code the contract gives (2 for configuration and usage, 1 for runtime
// failures), and never a stack trace.
func TestBadInputCLI(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-bad", moodlegen.Tiny())
	f := newRelFleet(t, env)
	f.mustRun(t, "backup", env.Name, "--time", relDay(1))
	srv := s3test.Start(t)
	bucket := srv.Config(t)
	os.Setenv(relS3KeyVar, srv.AccessKey)
	os.Setenv(relS3SecretVar, srv.SecretKey)
	os.Setenv("MBACKUP_RELTEST_WRONG_SECRET", "wrong-"+srv.SecretKey)

	// config writes a variant of the fleet's configuration; edit gets the
	// valid text and returns the broken one.
	config := func(t *testing.T, edit func(string) string) string {
		p := filepath.Join(t.TempDir(), "mbackup.yaml")
		if err := os.WriteFile(p, []byte(edit(f.yaml())), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	replace := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				panic("test bug: " + old + " not in the configuration")
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	s3url := func(b string) func(string) string {
		return replace("  url: "+f.repo+"\n", fmt.Sprintf("  url: s3:http://%s/%s/repo\n  s3:\n    access_key_env: %s\n    secret_key_env: %s\n", srv.Endpoint, b, relS3KeyVar, relS3SecretVar))
	}

	tests := []struct {
		name   string
		edit   func(string) string // nil: the fleet's configuration
		args   []string
		code   int
		expect []string // all in the one error line
	}{
		{"malformed YAML", replace("timezone: Europe/Zurich", "timezone: [Europe/Zurich"), []string{"snapshots"}, 2,
			[]string{"mbackup.yaml:2", "invalid YAML", "fix:"}},
		{"unknown key", replace("  password_file:", "  pasword_file:"), []string{"snapshots"}, 2,
			[]string{"mbackup.yaml:5", "pasword_file", `did you mean "password_file"`}},
		{"wrong type", replace("defaults:\n", "concurrency: lots\ndefaults:\n"), []string{"snapshots"}, 2,
			[]string{"concurrency", "lots", "fix:"}},
		{"missing configuration file", nil, []string{"--config", "/nonexistent/mbackup.yaml", "snapshots"}, 2,
			[]string{"/nonexistent/mbackup.yaml", "does not exist"}},
		{"missing password file", replace(f.pwFile, f.pwFile+".gone"), []string{"snapshots"}, 2,
			[]string{"repository.password_file", ".gone", "fix:"}},
		{"missing moodledata", replace(env.Moodledata, env.Moodledata+"-gone"), []string{"backup", env.Name}, 2,
			[]string{"moodledata", "-gone"}},
		{"unreachable database", replace("127.0.0.1:5432", "127.0.0.1:1"), []string{"backup", env.Name}, 1,
			[]string{env.Name, "127.0.0.1:1", "connect"}},
		{"wrong repository password", func(s string) string {
			p := filepath.Join(t.TempDir(), "wrong.key")
			os.WriteFile(p, []byte("not the password\n"), 0o600)
			return strings.Replace(s, f.pwFile, p, 1)
		}, []string{"snapshots"}, 2, []string{"wrong password", "password_file"}},
		{"wrong S3 secret key", func(s string) string {
			return strings.Replace(s3url(bucket.Bucket)(s), relS3SecretVar, "MBACKUP_RELTEST_WRONG_SECRET", 1)
		}, []string{"snapshots"}, 1, []string{"S3", "secret"}},
		{"bucket does not exist", s3url("no-such-bucket-mbackup"), []string{"snapshots"}, 1,
			[]string{"no-such-bucket-mbackup", "does not exist", "repository.url"}},
		{"no repository at the URL", replace(f.repo, f.repo+"-elsewhere"), []string{"snapshots"}, 2,
			[]string{"-elsewhere", "mbackup init"}},
		// backup opens the repository while its pg_dump starts: the
		// repository's error is still the one line, not one per environment.
		{"backup, wrong repository password", func(s string) string {
			p := filepath.Join(t.TempDir(), "wrong.key")
			os.WriteFile(p, []byte("not the password\n"), 0o600)
			return strings.Replace(s, f.pwFile, p, 1)
		}, []string{"backup", env.Name}, 2, []string{"wrong password", "password_file"}},
		{"backup, no repository at the URL", replace(f.repo, f.repo+"-elsewhere"), []string{"backup", "--all"}, 2,
			[]string{"-elsewhere", "mbackup init"}},
		{"--at matches nothing", nil, []string{"restore", env.Name, "--at", "2001-01-01", "--target-dir", "TMP"}, 1,
			[]string{env.Name, "2001-01-01"}},
		{"--at unparsable", nil, []string{"restore", env.Name, "--at", "next tuesday", "--target-dir", "TMP"}, 2,
			[]string{"next tuesday"}},
		{"unknown environment", nil, []string{"backup", "client-nope"}, 2,
			[]string{"client-nope", env.Name}},
		{"unknown snapshot", nil, []string{"restore", env.Name, "--snapshot", "deadbeef", "--target-dir", "TMP"}, 2,
			[]string{"deadbeef"}},
		{"unknown flag", nil, []string{"backup", "--everything"}, 2, []string{"--everything"}},
		{"unknown command", nil, []string{"backpu"}, 2, []string{"backpu", "Did you mean this? / backup"}},
		{"missing argument", nil, []string{"restore"}, 2, []string{"restore"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string(nil), tt.args...)
			for i, a := range args {
				if a == "TMP" {
					args[i] = filepath.Join(t.TempDir(), "out")
				}
			}
			if args[0] != "--config" {
				cfg := f.config
				if tt.edit != nil {
					cfg = config(t, tt.edit)
				}
				args = append([]string{"--config", cfg}, args...)
			}
			var out, errb strings.Builder
			code := run(args, strings.NewReader(""), &out, &errb)
			relNoCrash(t, tt.name, out.String(), errb.String())
			lines := relLines(errb.String())
			// backup adds a summary line after the environment's error.
			if len(lines) == 2 && strings.Contains(lines[1], "environment(s) failed; nothing was committed") {
				lines = lines[:1]
			}
			if len(lines) != 1 {
				t.Fatalf("want one line on stderr, got %d:\n%s", len(lines), errb.String())
			}
			t.Logf("exit %d: %s", code, lines[0])
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if !strings.HasPrefix(lines[0], "mbackup: ") {
				t.Errorf("the line does not start with mbackup: %s", lines[0])
			}
			for _, e := range tt.expect {
				if !strings.Contains(lines[0], e) {
					t.Errorf("the line does not name %q", e)
				}
			}
		})
	}
}

// Damaged repository objects: check names what is damaged and which
// snapshots it hurts, exits 1 and prints no stack trace; a restore that
// needs the damaged data fails with one clear error line; snapshots that
// do not need it still restore exactly.
func TestDamagedRepositoryObjectsCLI(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-damaged", moodlegen.Tiny())
	damages := []struct {
		name   string
		typ    backend.FileType
		damage func(data []byte) []byte
		check  string // in check's stderr
		// restore is in the error of a restore that needs the damage
		// (VICTIM stands for the damaged file's short ID); "" when no
		// snapshot can be restored at all.
		restore string
	}{
		{"truncated pack", backend.PackFile, func(b []byte) []byte { return b[:len(b)/2] }, "is damaged", "VICTIM"},
		{"garbage pack", backend.PackFile, func(b []byte) []byte { return []byte("garbage") }, "is damaged", "VICTIM"},
		{"flipped byte in a pack", backend.PackFile, func(b []byte) []byte { b[len(b)/3] ^= 1; return b }, "ciphertext verification failed", "ciphertext verification failed"},
		// An index file is needed by every command that reads the index.
		{"truncated index", backend.IndexFile, func(b []byte) []byte { return b[:len(b)-10] }, "stored file is damaged", ""},
		{"garbage snapshot", backend.SnapshotFile, func(b []byte) []byte { return []byte("{not sealed}") }, "unreadable", "stored file is damaged"},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			f := newRelFleet(t, env)
			want := captureRel(t, env)
			// Two snapshots, so that some damage hurts only one of them.
			f.mustRun(t, "backup", env.Name, "--time", relDay(1))
			env.Mutate(t, 7)
			want2 := captureRel(t, env)
			f.mustRun(t, "backup", env.Name, "--time", relDay(2))
			sns := f.snapshots(t)
			wants := map[string]relState{sns[0].ID: want, sns[1].ID: want2}
			be, err := local.Open(f.repo)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var victim string
			if err := be.List(ctx, d.typ, func(fi backend.FileInfo) error {
				if victim == "" || (d.typ == backend.SnapshotFile && fi.Name == sns[0].ID) {
					victim = fi.Name
				}
				return nil
			}); err != nil || victim == "" {
				t.Fatalf("no %v to damage: %v", d.typ, err)
			}
			h := backend.Handle{Type: d.typ, Name: victim}
			data, err := backend.ReadAll(ctx, be, h)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(f.repo, backend.Path(h)), d.damage(data), 0o600); err != nil {
				t.Fatal(err)
			}

			code, out, errOut := f.run(t, "check", "--read-data")
			relNoCrash(t, "check", out, errOut)
			if code != 1 {
				t.Fatalf("check: exit %d, want 1\n%s\n%s", code, out, errOut)
			}
			for _, l := range relLines(errOut) {
				if !strings.HasPrefix(l, "mbackup: ") {
					t.Errorf("check: unexpected stderr line %q", l)
				}
			}
			if !strings.Contains(errOut, victim[:8]) || !strings.Contains(errOut, d.check) {
				t.Errorf("check does not name the damaged %v %s (%q):\n%s", d.typ, victim[:8], d.check, errOut)
			}
			// Which snapshots does check call damaged?
			damaged := map[string]bool{}
			for _, sn := range sns {
				if strings.Contains(errOut, "snapshot "+sn.ID[:8]) || strings.Contains(errOut, "snapshot file "+sn.ID[:8]) {
					damaged[sn.ID] = true
				}
			}
			t.Logf("check names %d damaged snapshot(s):\n%s", len(damaged), errOut)
			if d.restore != "" && len(damaged) == 0 {
				t.Fatalf("check names no damaged snapshot")
			}

			for _, sn := range sns {
				if d.restore != "" && !damaged[sn.ID] {
					f.verifySnapshot(t, env, sn.ID, wants[sn.ID])
					continue
				}
				code, out, errOut := f.run(t, "restore", env.Name, "--snapshot", sn.ID[:12], "--target-dir", filepath.Join(t.TempDir(), "r"))
				relNoCrash(t, "restore", out, errOut)
				var errLines []string
				for _, l := range relLines(errOut) {
					switch {
					case strings.HasPrefix(l, "mbackup: "):
						errLines = append(errLines, l)
					case strings.HasPrefix(l, "time=") && strings.Contains(l, "retrying storage operation"):
					default:
						t.Errorf("restore: unexpected stderr line %q", l)
					}
				}
				if code == 0 || len(errLines) != 1 {
					t.Fatalf("restore of %s needing a %s: exit %d, want an error on one line:\n%s", sn.ID[:8], d.name, code, errOut)
				}
				cause := strings.ReplaceAll(d.restore, "VICTIM", victim[:8])
				if cause == "" {
					cause = d.check
				}
				if !strings.Contains(errLines[0], cause) || !strings.Contains(errLines[0], env.Name) && d.typ != backend.IndexFile && d.typ != backend.SnapshotFile {
					t.Errorf("restore error does not name the environment and the damage (%q): %s", cause, errLines[0])
				}
				t.Logf("restore %s: exit %d: %s", sn.ID[:8], code, errLines[0])
			}
		})
	}
}

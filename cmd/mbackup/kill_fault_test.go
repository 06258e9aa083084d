package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// The mbackup process is killed with SIGKILL at random moments of a
// backup, several times, with the environment changing in between. Every
// time the repository stays consistent; the next backup succeeds; and at
// the end check --read-data passes and every snapshot that was committed
// (some kills land after the commit) restores byte for byte to the state
// the environment had when it was taken. Production is only read.
func TestBackupKilledAtRandomPointsThenRerun(t *testing.T) {
	env := snapshottest.NewEnv(t, "client-kill", moodlegen.Demo())
	f := newRelFleet(t, env)
	bin := relBinary(t)

	// How long does a full backup take here? Measured on a scratch
	// repository, so that the kills below spread over a whole backup.
	scratch := newRelFleet(t, env)
	start := time.Now()
	if out, err := scratch.command(context.Background(), bin, "backup", env.Name).CombinedOutput(); err != nil {
		t.Fatalf("reference backup: %v\n%s", err, out)
	}
	full := time.Since(start)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("a full backup takes %v; kill points from seed %d", full.Round(time.Millisecond), seed)

	states := map[string]relState{} // snapshot time → state backed up
	killed := 0
	estimate := full // the last uninterrupted backup's duration
	for i := 0; i < 7; i++ {
		if i == 3 || i == 5 {
			env.Mutate(t, uint64(10+i))
		}
		want := captureRel(t, env)
		at := relDay(i)
		states[at] = want
		delay := time.Duration(rng.Int64N(int64(estimate) * 11 / 10))
		cmd := f.command(context.Background(), bin, "backup", env.Name, "--time", at)
		began := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		err := cmd.Wait()
		timer.Stop()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			killed++
			t.Logf("backup %d killed after %v", i, delay.Round(time.Millisecond))
		case err != nil:
			t.Fatalf("backup %d failed without being killed: %v", i, err)
		default:
			estimate = time.Since(began)
			t.Logf("backup %d finished in %v, before its kill at %v", i, estimate.Round(time.Millisecond), delay.Round(time.Millisecond))
		}
		// Whatever the moment, the repository's structure is sound.
		code, out, errOut := f.run(t, "check")
		if code != 0 {
			t.Fatalf("check after backup %d (killed: %v): exit %d\n%s\n%s", i, ws.Signaled(), code, out, errOut)
		}
	}
	if killed == 0 {
		t.Fatal("no backup was killed: the test proves nothing")
	}
	// Backups only read production: it is as the last capture saw it.
	final := relDay(100)
	states[final] = captureRel(t, env)
	if last := states[relDay(6)]; !bytes.Equal(last.dump, states[final].dump) || len(moodlegen.DiffTrees(last.files, states[final].files)) > 0 {
		t.Error("production changed during the killed backups")
	}
	// The re-run succeeds.
	f.mustRun(t, "backup", env.Name, "--time", final)
	f.mustRun(t, "check", "--read-data")

	// Killed processes leave lock files behind; nothing else is needed to
	// recover. Every committed snapshot restores exactly.
	sns := f.snapshots(t)
	t.Logf("%d of 7 backups killed, %d snapshots committed in all", killed, len(sns))
	for _, sn := range sns {
		want, ok := relStateAt(states, sn.Time)
		if !ok {
			t.Fatalf("snapshot %s has unexpected time %s", sn.ID[:8], sn.Time)
		}
		f.verifySnapshot(t, env, sn.ID, want)
	}
	if sns[len(sns)-1].ID == "" || !sameInstant(sns[len(sns)-1].Time, final) {
		t.Errorf("the re-run's snapshot is not the newest: %+v", sns[len(sns)-1])
	}
	// A killed backup leaves only unreferenced data, which prune removes,
	// and hidden temporary files of interrupted writes, which nothing
	// reads.
	f.mustRun(t, "prune")
	f.mustRun(t, "check", "--read-data")
	leftovers := 0
	filepath.WalkDir(f.repo, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), ".tmp-") {
			leftovers++
		}
		return nil
	})
	t.Logf("%d temporary files left by killed writes", leftovers)
}

// relStateAt finds the state recorded for an RFC 3339 time written in
// another zone.
func relStateAt(states map[string]relState, at string) (relState, bool) {
	for k, v := range states {
		if sameInstant(k, at) {
			return v, true
		}
	}
	return relState{}, false
}

func sameInstant(a, b string) bool {
	ta, err1 := time.Parse(time.RFC3339, a)
	tb, err2 := time.Parse(time.RFC3339, b)
	return err1 == nil && err2 == nil && ta.Equal(tb)
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// Two appliances (two mbackup processes with their own configuration)
// back up different environments into the same repository again and
// again, while a third process applies retention and prunes, again and
// again. No process waits for another or hangs; every backup succeeds;
// afterwards check --read-data passes, every snapshot that forget did not
// remove is still there, and every one restores byte for byte to the
// state its environment had when it was taken.
func TestTwoAppliancesAndAPruner(t *testing.T) {
	const rounds = 6
	bin := relBinary(t)
	envA := snapshottest.NewEnv(t, "client-appl-a", moodlegen.Tiny())
	envB := snapshottest.NewEnv(t, "client-appl-b", moodlegen.Tiny())
	applA := newRelFleet(t, envA)
	share := func(envs ...*snapshottest.Env) *relFleet {
		f := &relFleet{dir: t.TempDir(), envs: envs, repo: applA.repo, pwFile: applA.pwFile}
		f.config = filepath.Join(f.dir, "mbackup.yaml")
		f.write(t)
		return f
	}
	applB := share(envB)
	pruner := share(envA, envB)

	// A hung process fails the test instead of hanging it.
	runBin := func(f *relFleet, args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := f.command(ctx, bin, args...)
		var out, errb lockedBuf
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ctx.Err() != nil {
			err = fmt.Errorf("mbackup %v did not finish within 3 minutes (deadlock?): %w", args, err)
		}
		return out.String(), errb.String(), err
	}

	var (
		mu      sync.Mutex
		states  = map[string]relState{}          // snapshot ID → state backed up
		envOf   = map[string]*snapshottest.Env{} // snapshot ID → environment
		removed = map[string]bool{}              // snapshot IDs forget removed
	)
	appliance := func(f *relFleet, env *snapshottest.Env, seed uint64) error {
		for i := 0; i < rounds; i++ {
			if i > 0 {
				if _, err := moodlegen.Mutate(context.Background(), snapshottest.AdminURL(), env.DBName, env.Moodledata, env.Spec, moodlegen.Mutation{Seed: seed + uint64(i)}); err != nil {
					return err
				}
			}
			want, err := relCapture(env)
			if err != nil {
				return err
			}
			out, errOut, err := runBin(f, "backup", env.Name, "--json", "--time", relDay(i))
			if err != nil {
				return fmt.Errorf("backup %d of %s: %v\n%s", i, env.Name, err, errOut)
			}
			var res []backupResult
			if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 || res[0].Snapshot == nil {
				return fmt.Errorf("backup %d of %s: %v %s", i, env.Name, err, out)
			}
			mu.Lock()
			states[*res[0].Snapshot], envOf[*res[0].Snapshot] = want, env
			mu.Unlock()
		}
		return nil
	}

	done := make(chan struct{})
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); errs <- appliance(applA, envA, 100) }()
	go func() { defer wg.Done(); errs <- appliance(applB, envB, 200) }()
	prunes, deleted := 0, 0
	go func() {
		var err error
		defer func() { errs <- err }()
		for {
			select {
			case <-done:
				return
			default:
			}
			out, errOut, ferr := runBin(pruner, "forget", "--all", "--json")
			if ferr != nil {
				err = fmt.Errorf("forget: %v\n%s", ferr, errOut)
				return
			}
			var plans []forgetJSON
			if jerr := json.Unmarshal([]byte(out), &plans); jerr != nil {
				err = fmt.Errorf("forget --json: %v\n%s", jerr, out)
				return
			}
			mu.Lock()
			for _, p := range plans {
				for _, r := range p.Remove {
					removed[r.ID] = true
				}
			}
			mu.Unlock()
			pout, errOut, perr := runBin(pruner, "prune")
			if perr != nil {
				err = fmt.Errorf("prune: %v\n%s", perr, errOut)
				return
			}
			prunes++
			var n int
			for _, l := range strings.Split(pout, "\n") {
				if _, serr := fmt.Sscanf(l, "deleted %d pack(s)", &n); serr == nil {
					deleted += n
				}
			}
		}
	}()
	wg.Wait()
	close(done)
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d backups, %d forget+prune runs meanwhile, which deleted %d packs", len(states), prunes, deleted)
	if prunes == 0 {
		t.Fatal("no prune ran while the appliances backed up")
	}

	// No live writers now: one more round sweeps what the earlier ones had
	// to leave for them.
	var plans []forgetJSON
	if err := json.Unmarshal([]byte(pruner.mustRun(t, "forget", "--all", "--json")), &plans); err != nil {
		t.Fatal(err)
	}
	for _, p := range plans {
		for _, r := range p.Remove {
			removed[r.ID] = true
		}
	}
	pruner.mustRun(t, "prune")
	pruner.mustRun(t, "check", "--read-data")
	sns := pruner.snapshots(t)
	present := map[string]bool{}
	for _, sn := range sns {
		present[sn.ID] = true
	}
	for id := range states {
		if !present[id] && !removed[id] {
			t.Errorf("snapshot %s of %s was lost: neither in the repository nor removed by forget", id[:8], envOf[id].Name)
		}
	}
	if len(sns) != 6 {
		t.Errorf("%d snapshots kept, want 3 per environment (retention last: 3)", len(sns))
	}
	for _, sn := range sns {
		want, ok := states[sn.ID]
		if !ok {
			t.Fatalf("snapshot %s was not made by this test", sn.ID[:8])
		}
		pruner.verifySnapshot(t, envOf[sn.ID], sn.ID, want)
	}
}

// lockedBuf is a bytes.Buffer safe for a child process's output copier.
type lockedBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

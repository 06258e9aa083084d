package main

import (
	"context"
	"strings"
	"testing"
)

// A small soak run: faults fire, are retried, nothing is lost, the final
// check passes; with prune on the backups' own handle (as in mbackup
// serve), the last prune, run without faults, leaves no mark waiting for a
// session that ended. (The full run is `go run ./scripts/soak`.)
func TestSmallSoakLosesNothing(t *testing.T) {
	for _, tt := range []struct {
		name   string
		shared bool
	}{
		{"prune as another process", false},
		{"prune on the backups' handle", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			res, err := Run(context.Background(), Options{Backups: 6, Envs: 2, PruneEvery: 3, Keep: 1,
				FaultRate: 0.1, OutageRate: 0.5, Spec: "tiny", Seed: 42, Shared: tt.shared}, &out)
			if err != nil {
				t.Fatalf("soak: %v\n%s", err, out.String())
			}
			var summary strings.Builder
			res.print(&summary)
			t.Log(summary.String())
			if res.BytesLost != 0 || !res.CheckOK {
				t.Fatalf("lost %d bytes, check ok %v: %v", res.BytesLost, res.CheckOK, res.LostSnapshots)
			}
			if res.BackupsOK == 0 || res.Verified < res.BackupsOK || res.Prunes == 0 {
				t.Errorf("too little happened: %+v", res)
			}
			if res.FaultsInjected() == 0 || res.Retries == 0 {
				t.Errorf("no faults injected or retried: the run proves nothing (%+v)", res)
			}
			if tt.shared && res.FinalPending != 0 {
				t.Errorf("the last prune left %d marks waiting (lock files at the end: %v)", res.FinalPending, res.LeftoverLocks)
			}
			if !strings.Contains(res.markdown(), "| **bytes lost** | **0** |") {
				t.Errorf("markdown lacks the loss line:\n%s", res.markdown())
			}
		})
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"--backups", "0"}, {"--fault-rate", "0.9"}, {"--spec", "huge"}, {"extra"}, {"--nope"}} {
		var out, errb strings.Builder
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("soak %v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}

package main

import (
	"strings"
	"testing"
)

func TestAggregate(t *testing.T) {
	no := false
	rounds := [][]result{
		{{Round: 1, Tool: "mbackup", Phase: phaseFull, Wall: 3, CPU: 4, MaxRSS: 100, RepoSize: 10},
			{Round: 1, Tool: "restic", Phase: phaseFull, Wall: 5, CPU: 6, MaxRSS: 80, RepoSize: 11}},
		{{Round: 2, Tool: "mbackup", Phase: phaseFull, Wall: 1, CPU: 2, MaxRSS: 300, RepoSize: 10},
			{Round: 2, Tool: "restic", Phase: phaseFull, Error: "exit status 1"}},
		{{Round: 3, Tool: "mbackup", Phase: phaseFull, Wall: 2, CPU: 9, MaxRSS: 200, RepoSize: 10, Verified: &no},
			{Round: 3, Tool: "restic", Phase: phaseFull, Wall: 7, CPU: 6, MaxRSS: 90, RepoSize: 11}},
	}
	got := aggregate(rounds, "median")
	if len(got) != 2 {
		t.Fatalf("got %d cells, want 2", len(got))
	}
	mb := got[0]
	if mb.Wall != 2 || mb.CPU != 4 || mb.MaxRSS != 200 || mb.RepoSize != 10 || mb.Round != 0 {
		t.Errorf("mbackup median = %+v, want wall 2, CPU 4, RSS 200, size 10", mb)
	}
	if mb.Verified == nil || *mb.Verified {
		t.Errorf("a failed verification in any round must show: %+v", mb)
	}
	if rs := got[1]; !strings.Contains(rs.Error, "round 2") {
		t.Errorf("restic cell = %+v, want the round-2 error", rs)
	}
	mins := aggregate(rounds, "min")
	if mb := mins[0]; mb.Wall != 1 || mb.CPU != 2 || mb.MaxRSS != 200 {
		t.Errorf("mbackup minimum = %+v, want wall 1, CPU 2 and the median RSS 200", mb)
	}
}

func TestMarkdownRatios(t *testing.T) {
	rep := &report{Results: []result{
		{Tool: "mbackup", Backend: "local", Phase: phaseFull, Wall: 2, CPU: 3, MaxRSS: 200 << 20, RepoSize: 100 << 20},
		{Tool: "restic", Backend: "local", Phase: phaseFull, Wall: 8, CPU: 4, MaxRSS: 100 << 20, RepoSize: 101 << 20},
		{Tool: "borg", Backend: "local", Phase: phaseFull, Wall: 4, CPU: 6, MaxRSS: 80 << 20, RepoSize: 99 << 20},
		{Tool: "kopia", Backend: "local", Phase: phaseFull, Error: "boom"},
		{Tool: "mbackup", Backend: "s3", Phase: phaseFull, Wall: 1, CPU: 1, MaxRSS: 1, RepoSize: 1},
	}}
	var b strings.Builder
	rep.markdown(&b)
	out := b.String()
	for _, want := range []string{
		"| full backup (day 1) | local | 0.50 (vs borg) | - | - | 0.75 (vs restic) | 2.50 (vs borg) | 1.010 (vs borg) |",
		"| full backup (day 1) | local | kopia | - | - | - | - | FAILED: boom |",
		"- kopia/local full backup (day 1):",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	// No other tool on S3: no ratio row for it.
	if strings.Contains(out, "| full backup (day 1) | s3 | 1.00") || strings.Contains(out, "| s3 | -") {
		t.Errorf("ratio row for a backend with only mbackup:\n%s", out)
	}
}

// The floor (pg_dump alone) is shown on its own and subtracted from the
// wall times for the "beyond floor" ratio; it is never the best other tool.
func TestMarkdownFloor(t *testing.T) {
	rep := &report{Results: []result{
		{Tool: "pg_dump", Backend: floorBackend, Phase: phaseIncr, Wall: 4, CPU: 1.5},
		{Tool: "mbackup", Backend: "local", Phase: phaseIncr, Wall: 5, CPU: 3, MaxRSS: 1, RepoSize: 1},
		{Tool: "borg", Backend: "local", Phase: phaseIncr, Wall: 6, CPU: 4, MaxRSS: 1, RepoSize: 1},
		{Tool: "mbackup", Backend: "local", Phase: phaseFull, Wall: 8, CPU: 3, MaxRSS: 1, RepoSize: 1},
		{Tool: "borg", Backend: "local", Phase: phaseFull, Wall: 10, CPU: 4, MaxRSS: 1, RepoSize: 1},
	}}
	var b strings.Builder
	rep.markdown(&b)
	out := b.String()
	for _, want := range []string{
		"| incremental (day 2) | pg_dump | 4.00 | 1.50 |",
		"| incremental (day 2) | local | 0.83 (vs borg) | 0.50 (vs borg) | - | 0.75 (vs borg) |",
		"| full backup (day 1) | local | 0.80 (vs borg) | - | - | 0.75 (vs borg) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| floor |") {
		t.Errorf("the floor is listed as a tool's measurement:\n%s", out)
	}
}

// A restore's time until its data is on disk adds the sync that follows
// it: mbackup's is near zero (it syncs before it returns), the others'
// is the kernel's writeback of what they wrote.
func TestMarkdownUntilOnDisk(t *testing.T) {
	yes := true
	rep := &report{Results: []result{
		{Tool: "mbackup", Backend: "local", Phase: phaseRestore, Wall: 3, Sync: 0.01, CPU: 3, MaxRSS: 1, RepoSize: 1, Verified: &yes},
		{Tool: "kopia", Backend: "local", Phase: phaseRestore, Wall: 4, Sync: 1.99, CPU: 4, MaxRSS: 1, RepoSize: 1, Verified: &yes},
		{Tool: "borg", Backend: "local", Phase: phaseRestore, Wall: 5, Sync: 0.5, CPU: 4, MaxRSS: 1, RepoSize: 1, Verified: &yes},
	}}
	var b strings.Builder
	rep.markdown(&b)
	out := b.String()
	for _, want := range []string{
		"| restore (day 2) | local | kopia | 4.00 | 4.00 | 0.0 | 0.0 | verified; on disk 1.99 s later |",
		"| restore (day 2) | local | 0.75 (vs kopia) | - | 0.55 (vs borg) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, ""},
		{[]string{"--tools", "mbackup,restic", "--backends", "local"}, ""},
		{[]string{"--tools", "duplicati"}, "unknown tool"},
		{[]string{"--backends", "ftp"}, "unknown backend"},
		{[]string{"--factors", "1,x"}, "not a positive number"},
		{[]string{"--restore-db", "csv"}, "want sql or dump"},
		{[]string{"--repeat", "0"}, "at least 1"},
		{[]string{"--repeat", "3", "--stat", "min"}, ""},
		{[]string{"--stat", "mean"}, "want median or min"},
		{[]string{"--scaling", "--profile", "p"}, "separate modes"},
		{[]string{"extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseFlags(tt.args, &strings.Builder{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want a usage error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSpecOverrides(t *testing.T) {
	o, err := parseFlags([]string{"--preset", "demo", "--files", "1000", "--db-rows", "5000"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := o.spec(1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Files != 1000 || s.LogRows != 5000 {
		t.Errorf("spec files %d rows %d, want 1000 and 5000", s.Files, s.LogRows)
	}
	s10, err := o.spec(10)
	if err != nil {
		t.Fatal(err)
	}
	if s10.Files != 10000 || s10.LogRows != 5000 || s10.Users != s.Users {
		t.Errorf("10x spec: files %d rows %d users %d, want files ×10 and the database unchanged", s10.Files, s10.LogRows, s10.Users)
	}
}

package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestCompareEndToEnd runs the harness on the tiny preset with mbackup on
// both backends, against the real PostgreSQL and a real S3 server: every
// phase must be measured and every restore verified, and the run must
// leave no database and no work folder behind.
func TestCompareEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mbackup and generates an environment")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mbackup")
	build := exec.Command("go", "build", "-o", bin, "github.com/mbackup/mbackup/cmd/mbackup")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build mbackup: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "work")
	jsonOut := filepath.Join(dir, "results.json")
	mdOut := filepath.Join(dir, "results.md")
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"--preset", "tiny", "--tools", "mbackup", "--mbackup", bin,
		"--workdir", work, "--json", jsonOut, "--out", mdOut}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}

	var rep report
	data, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 9 {
		t.Fatalf("%d results, want 3 phases × (2 backends + the floor): %+v", len(rep.Results), rep.Results)
	}
	floors := map[string]string{}
	for _, r := range rep.Results {
		if r.Backend == floorBackend {
			if !r.ok() || r.Wall <= 0 || r.CPU <= 0 {
				t.Errorf("incomplete floor measurement: %+v", r)
			}
			floors[r.Phase] = r.Tool
			continue
		}
		if !r.ok() || r.Wall <= 0 || r.CPU <= 0 || r.MaxRSS <= 0 || r.RepoSize <= 0 {
			t.Errorf("incomplete measurement: %+v", r)
		}
		if r.Phase == phaseRestore && (r.Verified == nil || !*r.Verified) {
			t.Errorf("restore not verified: %+v", r)
		}
	}
	if want := map[string]string{phaseFull: "pg_dump", phaseIncr: "pg_dump", phaseRestore: "pg_restore"}; !maps.Equal(floors, want) {
		t.Errorf("floors measured: %v, want %v", floors, want)
	}
	md, err := os.ReadFile(mdOut)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), string(md)) || !strings.Contains(string(md), "| restore (day 2) | s3 | mbackup |") {
		t.Errorf("--out differs from the printed table or lacks the S3 restore:\n%s", md)
	}

	if _, err := os.Stat(work); err == nil {
		if entries, _ := os.ReadDir(work); len(entries) > 0 {
			t.Errorf("work folder %s not cleaned: %v", work, entries)
		}
	}
	conn, err := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:5432/postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var left int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", rep.Dataset["database"]).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("database %v left behind", rep.Dataset["database"])
	}
}

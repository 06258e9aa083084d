package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Phases of the comparison, in order.
const (
	phaseFull    = "full backup (day 1)"
	phaseIncr    = "incremental (day 2)"
	phaseRestore = "restore (day 2)"
)

var phases = []string{phaseFull, phaseIncr, phaseRestore}

// result is one measured (or skipped, or failed) tool × backend × phase.
type result struct {
	Round    int     `json:"round,omitempty"`
	Tool     string  `json:"tool"`
	Backend  string  `json:"backend"`
	Phase    string  `json:"phase"`
	Wall     float64 `json:"wall_seconds"`
	CPU      float64 `json:"cpu_seconds"`
	MaxRSS   int64   `json:"max_rss_bytes"`
	RepoSize int64   `json:"repo_bytes"`
	Verified *bool   `json:"verified,omitempty"` // restores only
	// Sync is how long `sync --file-system` took right after a restore:
	// the restored data reaching the disk (restores only).
	Sync    float64 `json:"sync_seconds,omitempty"`
	Skipped string  `json:"skipped,omitempty"`
	Error   string  `json:"error,omitempty"`
}

func (r result) ok() bool { return r.Skipped == "" && r.Error == "" }

func newResult(t *target, phase string, u usage) result {
	return result{Tool: t.tool.name(), Backend: string(t.kind), Phase: phase,
		Wall: u.Wall.Seconds(), CPU: u.CPU().Seconds(), MaxRSS: u.MaxRSS}
}

// report is everything the run prints and writes.
type report struct {
	Command  string            `json:"command"`
	Started  time.Time         `json:"started"`
	Machine  string            `json:"machine"`
	Versions map[string]string `json:"versions"`
	Notes    []string          `json:"notes"`
	Dataset  map[string]any    `json:"dataset"`
	// Results holds one row per tool, backend and phase, aggregated over
	// Rounds (see aggregate), which holds every measurement.
	Results   []result   `json:"results"`
	Rounds    [][]result `json:"rounds"`
	Stat      string     `json:"stat"`        // how rounds are aggregated
	Load      float64    `json:"load_before"` // one-minute load average
	LoadAfter float64    `json:"load_after"`
}

// aggregate folds the rounds into one result per tool, backend and phase:
// of each time, the median or (stat "min") the minimum over the rounds
// where the cell succeeded; of RSS and size always the median. The minimum
// is the better estimate of a tool's own speed on a machine where other
// work comes and goes. A cell that failed in any round keeps the first
// error.
func aggregate(rounds [][]result, stat string) []result {
	if len(rounds) == 0 {
		return nil
	}
	var out []result
	for i, first := range rounds[0] {
		var ok []result
		cell := first
		cell.Round = 0
		for _, rs := range rounds {
			if i >= len(rs) {
				continue
			}
			r := rs[i]
			switch {
			case r.Error != "" && cell.Error == "":
				cell.Error = fmt.Sprintf("round %d: %s", r.Round, r.Error)
			case r.Verified != nil && !*r.Verified:
				cell.Verified = r.Verified
			}
			if r.ok() {
				ok = append(ok, r)
			}
		}
		if len(ok) > 0 && cell.Error == "" {
			pick := func(get func(result) float64, min bool) float64 {
				v := make([]float64, len(ok))
				for j, r := range ok {
					v[j] = get(r)
				}
				slices.Sort(v)
				switch {
				case min:
					return v[0]
				case len(v)%2 == 1:
					return v[len(v)/2]
				}
				return (v[len(v)/2-1] + v[len(v)/2]) / 2
			}
			useMin := stat == "min"
			cell.Wall = pick(func(r result) float64 { return r.Wall }, useMin)
			cell.CPU = pick(func(r result) float64 { return r.CPU }, useMin)
			cell.Sync = pick(func(r result) float64 { return r.Sync }, useMin)
			cell.MaxRSS = int64(pick(func(r result) float64 { return float64(r.MaxRSS) }, false))
			cell.RepoSize = int64(pick(func(r result) float64 { return float64(r.RepoSize) }, false))
		}
		out = append(out, cell)
	}
	return out
}

func mib(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", float64(n)/(1<<20))
}

// markdown renders the report: a header, the measurements, and the ratio of
// mbackup to the best other tool per phase and backend.
func (rep *report) markdown(w io.Writer) {
	fmt.Fprintf(w, "## mbackup vs restic, borg, kopia\n\n")
	fmt.Fprintf(w, "Command: `%s`  \n", rep.Command)
	fmt.Fprintf(w, "Run: %s on %s  \n", rep.Started.Format("2006-01-02 15:04 MST"), rep.Machine)
	var vs []string
	for _, name := range []string{"mbackup", "restic", "borg", "kopia", "pg_dump", "postgres"} {
		if v, ok := rep.Versions[name]; ok {
			vs = append(vs, fmt.Sprintf("%s: %s", name, v))
		}
	}
	fmt.Fprintf(w, "Versions: %s  \n", strings.Join(vs, "; "))
	rounds := ""
	if n := len(rep.Rounds); n > 1 {
		if rep.Stat == "min" {
			rounds = fmt.Sprintf("; times are the minimum of %d rounds, RSS and sizes the median", n)
		} else {
			rounds = fmt.Sprintf("; every number is the median of %d rounds", n)
		}
	}
	fmt.Fprintf(w, "Load average: %.2f before, %.2f after%s  \n", rep.Load, rep.LoadAfter, rounds)
	if d := rep.Dataset; d != nil {
		fmt.Fprintf(w, "Data: %v\n", d["summary"])
	}
	fmt.Fprintln(w)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "| phase | backend | tool | wall s | CPU s | peak RSS MiB | repo MiB | note |\n")
	fmt.Fprintf(w, "|---|---|---|---:|---:|---:|---:|---|\n")
	for _, ph := range phases {
		for _, be := range []string{string(backendLocal), string(backendS3)} {
			for _, r := range rep.Results {
				if r.Phase != ph || r.Backend != be {
					continue
				}
				note := ""
				switch {
				case r.Skipped != "":
					note = "skipped: " + r.Skipped
				case r.Error != "":
					note = "FAILED: " + firstLine(r.Error)
				case r.Verified != nil && *r.Verified:
					note = fmt.Sprintf("verified; on disk %.2f s later", r.Sync)
				}
				if !r.ok() {
					fmt.Fprintf(w, "| %s | %s | %s | - | - | - | - | %s |\n", ph, be, r.Tool, note)
					continue
				}
				fmt.Fprintf(w, "| %s | %s | %s | %.2f | %.2f | %s | %s | %s |\n",
					ph, be, r.Tool, r.Wall, r.CPU, mib(r.MaxRSS), mib(r.RepoSize), note)
			}
		}
	}

	floors := map[string]result{}
	for _, r := range rep.Results {
		if r.Backend == floorBackend && r.ok() {
			floors[r.Phase] = r
		}
	}
	if len(floors) > 0 {
		fmt.Fprintf(w, "\nThe PostgreSQL client alone, on the same data just before the tools (the floor: every tool's phase includes it):\n\n")
		fmt.Fprintf(w, "| phase | program | wall s | CPU s |\n|---|---|---:|---:|\n")
		for _, ph := range phases {
			if f, ok := floors[ph]; ok {
				fmt.Fprintf(w, "| %s | %s | %.2f | %.2f |\n", ph, f.Tool, f.Wall, f.CPU)
			}
		}
	}

	fmt.Fprintf(w, "\nmbackup / best other tool (below 1 = mbackup better; issue 7 targets: wall ≤ 0.5, RSS ≤ 1, repo ≤ 1; "+
		"beyond floor: wall time minus the floor's, the part a backup tool can change):\n\n")
	fmt.Fprintf(w, "| phase | backend | wall | wall beyond floor | wall until on disk | CPU | peak RSS | repo size |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, ph := range phases {
		for _, be := range []string{string(backendLocal), string(backendS3)} {
			var mb *result
			var others []result
			for _, r := range rep.Results {
				if r.Phase != ph || r.Backend != be || !r.ok() {
					continue
				}
				if r.Tool == "mbackup" {
					mb = &r
				} else {
					others = append(others, r)
				}
			}
			if mb == nil || len(others) == 0 {
				continue
			}
			cell := func(format string, get func(result) float64) string {
				best, name := math.Inf(1), ""
				for _, o := range others {
					if v := get(o); v > 0 && v < best {
						best, name = v, o.Tool
					}
				}
				if name == "" {
					return "-"
				}
				return fmt.Sprintf(format, get(*mb)/best, name)
			}
			beyond := "-"
			if f, ok := floors[ph]; ok {
				beyond = cell("%.2f (vs %s)", func(r result) float64 { return max(r.Wall-f.Wall, 0) })
			}
			onDisk := "-"
			if ph == phaseRestore {
				onDisk = cell("%.2f (vs %s)", func(r result) float64 { return r.Wall + r.Sync })
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", ph, be,
				cell("%.2f (vs %s)", func(r result) float64 { return r.Wall }),
				beyond, onDisk,
				cell("%.2f (vs %s)", func(r result) float64 { return r.CPU }),
				cell("%.2f (vs %s)", func(r result) float64 { return float64(r.MaxRSS) }),
				// Sizes differ by fractions of a percent: one more digit.
				cell("%.3f (vs %s)", func(r result) float64 { return float64(r.RepoSize) }))
		}
	}
	var failures []result
	for _, r := range rep.Results {
		if r.Error != "" {
			failures = append(failures, r)
		}
	}
	if len(failures) > 0 {
		fmt.Fprintf(w, "\nFailures:\n\n")
		for _, r := range failures {
			fmt.Fprintf(w, "- %s/%s %s:\n\n```\n%s\n```\n", r.Tool, r.Backend, r.Phase, r.Error)
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	if len(l) > 120 {
		l = l[:117] + "..."
	}
	return strings.ReplaceAll(l, "|", `\|`)
}

// writeFiles writes the markdown table and the JSON results where asked.
func (rep *report) writeFiles(mdPath, jsonPath string) error {
	if mdPath != "" {
		var b strings.Builder
		rep.markdown(&b)
		if err := os.WriteFile(mdPath, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("write --out: %w", err)
		}
	}
	if jsonPath != "" {
		return writeJSON(jsonPath, rep)
	}
	return nil
}

// writeJSON writes v, indented, to path (the --json flag).
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write --json: %w", err)
	}
	return nil
}

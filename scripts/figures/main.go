// Command figures measures the engine figures quoted in README.md that no
// Go benchmark covers:
//
//	go run ./scripts/figures unchanged [--files 100000]
//	go run ./scripts/figures prune [--envs 10] [--snapshots 200]
//
// unchanged backs up a folder of many small files twice and reports the
// time of the second, unchanged run (files are recognised by size, mtime
// and inode and not read). prune builds a repository with snapshots of
// several changing environments, forgets half of them and runs prune in a
// child process, reporting its time and peak memory (maxrss).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/archiver"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/prune"
)

const password = "figures"

var opts = engine.Options{KDF: crypto.KDFParams{N: 1024, R: 8, P: 1}}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: figures unchanged|prune [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "unchanged":
		err = unchanged(os.Args[2:])
	case "prune":
		err = pruneFigure(os.Args[2:])
	case "prune-child":
		err = pruneChild(os.Args[2])
	default:
		err = fmt.Errorf("unknown figure %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "figures:", err)
		os.Exit(1)
	}
}

func newRepo(ctx context.Context, dir string) (*engine.Repository, error) {
	be, err := local.Open(dir)
	if err != nil {
		return nil, err
	}
	return engine.Init(ctx, be, password, engine.InitOptions{}, opts)
}

func backup(ctx context.Context, r *engine.Repository, dir, source string, at time.Time) (archiver.Stats, error) {
	s, err := r.StartSession(ctx, "backup", source)
	if err != nil {
		return archiver.Stats{}, err
	}
	defer s.Close(ctx)
	snap := &engine.Snapshot{Time: at, Source: source}
	var parent *engine.Snapshot
	if sns, err := r.Snapshots(ctx); err == nil {
		for _, sn := range sns {
			if sn.Source == source {
				parent = sn
			}
		}
	}
	ao := archiver.Options{}
	if parent != nil {
		ao.Parent = &parent.Tree
	}
	tree, st, err := archiver.Archive(ctx, r, dir, ao)
	if err != nil {
		return st, err
	}
	snap.Tree = tree
	_, err = s.Commit(ctx, snap)
	return st, err
}

// writeFiles creates n small files spread over folders like Moodle's
// filedir/xx/yy.
func writeFiles(dir string, rng *rand.Rand, n int, tag string) error {
	buf := make([]byte, 8<<10)
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("%02x", i%256), fmt.Sprintf("%02x", (i/256)%256))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		size := 512 + rng.IntN(len(buf)-512)
		for j := range size {
			buf[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("%s%06d", tag, i)), buf[:size], 0o644); err != nil {
			return err
		}
	}
	return nil
}

func unchanged(args []string) error {
	fs := flag.NewFlagSet("unchanged", flag.ExitOnError)
	files := fs.Int("files", 100_000, "number of files")
	fs.Parse(args)
	ctx := context.Background()
	work, err := os.MkdirTemp("", "figures")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "moodledata")
	fmt.Fprintf(os.Stderr, "writing %d files…\n", *files)
	if err := writeFiles(src, rand.New(rand.NewPCG(1, 2)), *files, "f"); err != nil {
		return err
	}
	r, err := newRepo(ctx, filepath.Join(work, "repo"))
	if err != nil {
		return err
	}
	defer r.Close()
	start := time.Now()
	st1, err := backup(ctx, r, src, "site", time.Now())
	if err != nil {
		return err
	}
	first := time.Since(start)
	start = time.Now()
	st2, err := backup(ctx, r, src, "site", time.Now())
	if err != nil {
		return err
	}
	second := time.Since(start)
	fmt.Printf("| files | first backup | read | second backup (unchanged) | read | unchanged files |\n|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %s | %.1f MiB | %s | %.1f MiB | %d |\n", st1.Files, first.Round(10*time.Millisecond), float64(st1.ReadBytes)/(1<<20),
		second.Round(10*time.Millisecond), float64(st2.ReadBytes)/(1<<20), st2.Unchanged)
	return nil
}

func pruneFigure(args []string) error {
	fs := flag.NewFlagSet("prune", flag.ExitOnError)
	envs := fs.Int("envs", 10, "environments")
	snaps := fs.Int("snapshots", 200, "snapshots in all")
	files := fs.Int("files", 2000, "files per environment")
	fs.Parse(args)
	ctx := context.Background()
	work, err := os.MkdirTemp("", "figures")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	repoDir := filepath.Join(work, "repo")
	r, err := newRepo(ctx, repoDir)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	dirs := make([]string, *envs)
	for e := range dirs {
		dirs[e] = filepath.Join(work, fmt.Sprintf("env%02d", e))
		if err := writeFiles(dirs[e], rng, *files, "f"); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "taking %d snapshots of %d environments…\n", *snaps, *envs)
	day := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	for i := range *snaps {
		e := i % *envs
		// A day of change: 2% new files, a few deleted.
		if err := writeFiles(filepath.Join(dirs[e], "new"), rng, *files/50, fmt.Sprintf("d%03d-", i)); err != nil {
			return err
		}
		if _, err := backup(ctx, r, dirs[e], fmt.Sprintf("env%02d", e), day.Add(time.Duration(i/(*envs))*24*time.Hour)); err != nil {
			return err
		}
		if i%(*envs) == *envs-1 {
			os.RemoveAll(filepath.Join(dirs[(i/(*envs))%(*envs)], "new"))
		}
	}
	// Forget the older half.
	sns, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	for _, sn := range sns[:len(sns)/2] {
		if err := r.RemoveSnapshot(ctx, sn.ID()); err != nil {
			return err
		}
	}
	st := r.IndexStats()
	r.Close()
	fmt.Fprintln(os.Stderr, "pruning in a child process…")
	cmd := exec.Command(os.Args[0], "prune-child", repoDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("prune child: %w", err)
	}
	// The child reports its own peak (VmHWM) on the first line: its
	// rusage maxrss would start at this process's resident set, which
	// Linux carries into a forked child's peak across exec.
	hwm, result, _ := strings.Cut(string(out), "\n")
	kib, err := strconv.ParseInt(hwm, 10, 64)
	if err != nil {
		return fmt.Errorf("prune child: bad report %q", out)
	}
	fmt.Printf("| snapshots | environments | blobs | packs | prune CPU | peak memory (VmHWM) | result |\n|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d (%d forgotten) | %d | %d | %d | %s | %.0f MiB | %s |\n", len(sns), len(sns)/2, *envs, st.Blobs, st.Packs,
		cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime(), float64(kib)/1024, result)
	return nil
}

func pruneChild(dir string) error {
	ctx := context.Background()
	be, err := local.Open(dir)
	if err != nil {
		return err
	}
	r, err := engine.Open(ctx, be, password, opts)
	if err != nil {
		return err
	}
	defer r.Close()
	start := time.Now()
	st, err := prune.Run(ctx, r, prune.Options{})
	if err != nil {
		return err
	}
	hwm, err := peakRSS()
	if err != nil {
		return err
	}
	fmt.Printf("%d\n%s wall, deleted %d packs, repacked %d, freed %.1f MiB", hwm, time.Since(start).Round(10*time.Millisecond), st.DeletedPacks, st.Repacked, float64(st.FreedBytes)/(1<<20))
	return nil
}

// peakRSS returns this process's peak resident set in KiB (VmHWM): unlike
// getrusage's maxrss it counts only this program's memory, not a parent's
// resident set inherited at fork.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

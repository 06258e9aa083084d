package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/restore"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

// profiled runs fn under a CPU profile and writes the profile and an
// allocation profile to dir/name.{cpu,allocs}.pprof, printing the wall
// time per phase (fn reports phase changes) and the garbage collector's
// figures.
func profiled(dir, name string, stdout io.Writer, fn func(progress func(phase string)) (string, error)) error {
	cpu, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	stopPeak := watchPeakHeap()
	start := time.Now()
	// Phases may overlap (the files are copied while the dump runs): keep
	// each phase's first and last report, in order of first appearance.
	var (
		mu    sync.Mutex
		order []string
		spans = map[string][2]time.Duration{}
	)
	progress := func(phase string) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Since(start)
		sp, ok := spans[phase]
		if !ok {
			order = append(order, phase)
			sp[0] = now
		}
		sp[1] = now
		spans[phase] = sp
	}
	summary, err := fn(progress)
	pprof.StopCPUProfile()
	elapsed := time.Since(start)
	peak, peakProfile := stopPeak()
	var phases []string
	for _, ph := range order {
		sp := spans[ph]
		phases = append(phases, fmt.Sprintf("%s %.2f–%.2fs", ph, sp[0].Seconds(), sp[1].Seconds()))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	allocs, err := os.Create(filepath.Join(dir, name+".allocs.pprof"))
	if err != nil {
		return err
	}
	defer allocs.Close()
	if err := pprof.Lookup("allocs").WriteTo(allocs, 0); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".peakheap.pprof"), peakProfile, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %.2fs (%s), %s; %d mallocs, %s MiB allocated, %d GC cycles, peak heap objects %s MiB\n",
		name, elapsed.Seconds(), strings.Join(phases, ", "), summary, after.Mallocs-before.Mallocs,
		mib(int64(after.TotalAlloc-before.TotalAlloc)), after.NumGC-before.NumGC, mib(int64(peak)))
	return nil
}

// watchPeakHeap samples the heap every 20ms until stopped and keeps the
// heap profile taken when the live heap was largest: the in-use view at
// the moment that sets the peak RSS, which the profile at the end (after
// the work is done) cannot show. stop returns the peak in bytes and the
// profile.
func watchPeakHeap() (stop func() (uint64, []byte)) {
	done := make(chan struct{})
	result := make(chan struct {
		peak uint64
		prof []byte
	})
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		var prof bytes.Buffer
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak {
				peak = v
				prof.Reset()
				_ = pprof.Lookup("heap").WriteTo(&prof, 0)
			}
			select {
			case <-done:
				result <- struct {
					peak uint64
					prof []byte
				}{peak, prof.Bytes()}
				return
			case <-tick.C:
			}
		}
	}()
	return func() (uint64, []byte) {
		close(done)
		r := <-result
		return r.peak, r.prof
	}
}

// runProfile generates the environment and runs mbackup's two backups and
// a restore of day 2 into a folder in this process, with a CPU profile and
// an allocation profile of each, so that `go tool pprof -top` shows where
// the time of `mbackup backup` and `mbackup restore --target-dir` goes. It
// calls the snapshot and restore packages the way cmd/mbackup does for a
// local repository (two uploaders); only the CLI around them is missing.
func runProfile(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	versions := map[string]string{}
	if err := checkCommon(ctx, o, versions); err != nil {
		return err
	}
	spec, err := o.spec(1)
	if err != nil {
		return err
	}
	outDir, err := filepath.Abs(o.profileDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	ws, err := newWorkspace(o, stderr)
	if err != nil {
		return err
	}
	defer ws.close()
	db := dbName()
	ws.onClose(func() {
		if !o.keep {
			_ = (&dataset{adminURL: o.pg, db: db}).drop(context.WithoutCancel(ctx))
		}
	})
	fmt.Fprintf(stderr, "bench: generating %d files, %d log rows\n", spec.Files, spec.LogRows)
	ds, err := generate(ctx, o.pg, db, filepath.Join(ws.dir, "env"), spec, benchPassword)
	if err != nil {
		return err
	}
	be, err := local.Open(filepath.Join(ws.dir, "repo"))
	if err != nil {
		return err
	}
	opts := engine.Options{Uploaders: 2} // cmd/mbackup's setting for local repositories
	repo, err := engine.Init(ctx, be, benchPassword, engine.InitOptions{}, opts)
	if err != nil {
		return fmt.Errorf("init repository: %w", err)
	}
	defer repo.Close()
	src := snapshot.Source{Env: "bench", DB: &postgres.DB{URL: ds.in.dbURL}, Moodledata: ds.in.moodledata, Exclude: ds.in.exclude}

	backup := func(progress func(string)) (string, error) {
		res, err := snapshot.Backup(ctx, repo, src, snapshot.Options{Version: "bench-profile",
			Progress: func(p snapshot.Progress) { progress(p.Phase) }})
		if err != nil {
			return "", err
		}
		return mib(res.Snapshot.Manifest.AddedBytes) + " MiB added", nil
	}
	if err := profiled(outDir, "backup1", stdout, backup); err != nil {
		return err
	}
	if err := ds.mutate(ctx, o.dayseed, ""); err != nil {
		return err
	}
	if err := profiled(outDir, "backup2", stdout, backup); err != nil {
		return err
	}
	dst := filepath.Join(ws.dir, "restore")
	err = profiled(outDir, "restore", stdout, func(progress func(string)) (string, error) {
		sn, err := snapshot.Latest(ctx, repo, src.Env)
		if err != nil {
			return "", err
		}
		rep, err := restore.ToDir(ctx, repo, sn, dst, restore.Options{
			Progress: func(p restore.Progress) { progress(p.Phase) }})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s MiB fetched", mib(rep.FetchBytes)), nil
	})
	if err != nil {
		return err
	}
	// Checked outside the profile, which is of mbackup alone.
	want, err := ds.digest()
	if err != nil {
		return err
	}
	if err := verifyRestore(want, restored{moodledata: filepath.Join(dst, "moodledata"), dump: filepath.Join(dst, "db.sql")}); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "profiles in %s; read them with\n  go tool pprof -top %s\n", outDir, filepath.Join(outDir, "backup1.cpu.pprof"))
	return nil
}

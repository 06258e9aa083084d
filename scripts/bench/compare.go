package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mbackup/mbackup/scripts/moodlegen"
)

// benchPassword protects every repository; passed to the tools through
// their environment variables, never on a command line.
const benchPassword = "mbackup-bench-password"

// newTools returns the tools named by --tools, checked. A missing kopia is
// skipped with a note; any other missing tool is a prerequisite error.
func newTools(ctx context.Context, o *options, r *runner, versions map[string]string, notes *[]string) ([]tool, error) {
	var out []tool
	for _, name := range o.tools {
		var t tool
		switch name {
		case "mbackup":
			bin, err := filepath.Abs(o.mbackup)
			if err != nil {
				return nil, err
			}
			t = &mbackupTool{bin: bin}
		case "restic":
			t = &resticTool{}
		case "borg":
			t = &borgTool{}
		case "kopia":
			t = &kopiaTool{}
		}
		v, err := t.check(ctx, r)
		if err != nil {
			if name == "kopia" {
				*notes = append(*notes, "kopia not measured: "+err.Error())
				continue
			}
			return nil, usageError{err.Error()}
		}
		versions[name] = v
		out = append(out, t)
	}
	return out, nil
}

// runCompare is the default mode: every tool, every phase, every backend,
// --repeat times on freshly generated data; the table shows medians.
func runCompare(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	rep := &report{Command: commandLine(o), Started: time.Now(), Machine: machine(), Versions: map[string]string{}, Load: loadAverage()}
	r := &runner{timeout: o.timeout, verbose: o.verbose, log: stderr}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	if err := checkCommon(ctx, o, rep.Versions); err != nil {
		return err
	}
	tools, err := newTools(ctx, o, r, rep.Versions, &rep.Notes)
	if err != nil {
		return err
	}
	spec, err := o.spec(1)
	if err != nil {
		return err
	}
	ws, err := newWorkspace(o, stderr)
	if err != nil {
		return err
	}
	defer ws.close()

	var srv *s3Server
	if containsKind(o.backends, backendS3) {
		if srv, err = startS3(ctx, ws.dir); err != nil {
			return usageError{err.Error()}
		}
		ws.onClose(srv.stop)
		r.secrets = append(r.secrets, srv.SecretKey)
	}
	r.secrets = append(r.secrets, benchPassword)
	if l := rep.Load; l > 0.5 {
		logf("bench: warning: load average %.2f before the run; other work on this machine skews the timings (use --repeat)", l)
	}

	db := dbName()
	ws.onClose(func() {
		if o.keep {
			fmt.Fprintf(stderr, "kept the database %s\n", db)
			return
		}
		if err := (&dataset{adminURL: o.pg, db: db}).drop(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(stderr, "bench: drop database %s: %v\n", db, err)
		}
	})
	var ds *dataset
	for n := 1; n <= o.repeat; n++ {
		rc := &round{o: o, r: r, logf: logf, tools: tools, srv: srv, n: n, notes: &rep.Notes,
			dir: filepath.Join(ws.dir, fmt.Sprintf("round%d", n))}
		if o.repeat > 1 {
			logf("bench: round %d of %d", n, o.repeat)
		}
		if ds, err = rc.generate(ctx, spec, db); err != nil {
			return err
		}
		if err := rc.run(ctx, ds); err != nil {
			return err
		}
		rep.Rounds = append(rep.Rounds, rc.results)
		if !o.keep {
			_ = os.RemoveAll(rc.dir)
		}
	}
	rep.Stat = o.stat
	rep.Results = aggregate(rep.Rounds, o.stat)
	rep.LoadAfter = loadAverage()

	m := ds.mutation
	rep.Dataset = map[string]any{
		"preset": o.preset, "scale": o.scale, "seed": o.seed, "day_seed": o.dayseed, "database": db,
		"files": ds.files, "bytes": ds.bytes, "junk_files": ds.junkFiles, "junk_bytes": ds.junkBytes,
		"db_rows": ds.dbRows, "dump_bytes_day1": ds.day1Dump, "dump_bytes_day2": ds.dumpBytes,
		"files_added": m.FilesAdded, "files_deleted": m.FilesDeleted, "content_bytes_added": m.ContentBytes,
		"users_updated": m.UsersUpdated, "log_rows_added": m.LogRowsAdded, "log_rows_deleted": m.LogRowsDeleted,
		"summary": fmt.Sprintf("moodledata %d files, %s MiB (of which %d junk files, %s MiB, excluded by every tool); "+
			"database %d rows, pg_dump -Fc -Z0 %s MiB; day 2: +%d/-%d files (+%s MiB), %d users updated, +%d/-%d log rows",
			ds.files, mib(ds.bytes), ds.junkFiles, mib(ds.junkBytes), ds.dbRows, mib(ds.day1Dump),
			m.FilesAdded, m.FilesDeleted, mib(m.ContentBytes), m.UsersUpdated, m.LogRowsAdded, m.LogRowsDeleted),
	}
	rep.Notes = append(rep.Notes, methodNotes(o)...)
	fmt.Fprintln(stdout)
	rep.markdown(stdout)
	if err := rep.writeFiles(o.out, o.jsonOut); err != nil {
		return err
	}
	for _, res := range rep.Results {
		if res.Error != "" {
			return errMeasurementFailed
		}
	}
	return nil
}

// round is one pass of every tool through every phase on fresh data.
type round struct {
	o       *options
	r       *runner
	logf    func(string, ...any)
	tools   []tool
	srv     *s3Server
	n       int
	dir     string
	notes   *[]string
	results []result
	failed  map[*target]bool
}

func (rc *round) generate(ctx context.Context, spec moodlegen.Spec, db string) (*dataset, error) {
	rc.logf("bench: generating the environment in %s (preset %s, scale %g, %d files, %d log rows, seed %d)",
		rc.dir, rc.o.preset, rc.o.scale, spec.Files, spec.LogRows, spec.Seed)
	ds, err := generate(ctx, rc.o.pg, db, filepath.Join(rc.dir, "env"), spec, benchPassword)
	if err != nil {
		return nil, err
	}
	rc.logf("bench: generated in %.1fs: moodledata %d files, %s MiB (junk %d files, %s MiB, excluded); database %d rows, dump %s MiB",
		ds.genTime.Seconds(), ds.files, mib(ds.bytes), ds.junkFiles, mib(ds.junkBytes), ds.dbRows, mib(ds.dumpBytes))
	return ds, nil
}

// restoreCheck is what the bench learns after a restore: whether its
// output matched, and how long the restored data then took to reach the
// disk.
type restoreCheck struct {
	verified bool
	sync     time.Duration
}

// record stores one measurement and logs it.
func (rc *round) record(tg *target, phase string, u usage, err error, check *restoreCheck) {
	res := newResult(tg, phase, u)
	res.Round = rc.n
	if check != nil {
		res.Verified = &check.verified
		res.Sync = check.sync.Seconds()
	}
	switch {
	case errors.Is(err, errSkipPhase):
		res.Skipped = strings.TrimPrefix(err.Error(), errSkipPhase.Error()+": ")
		rc.logf("  %-16s %-22s skipped: %s", tg, phase, res.Skipped)
	case err != nil:
		res.Error = err.Error()
		rc.failed[tg] = true
		rc.logf("  %-16s %-22s FAILED: %s", tg, phase, err)
	default:
		res.RepoSize = tg.size()
		rc.logf("  %-16s %-22s wall %6.2fs  cpu %6.2fs  rss %6s MiB  repo %7s MiB", tg, phase, res.Wall, res.CPU, mib(res.MaxRSS), mib(res.RepoSize))
	}
	rc.results = append(rc.results, res)
}

// floorBackend marks results that are no tool's: the PostgreSQL client
// alone, the part of a phase that no backup tool can make faster.
const floorBackend = "floor"

// floor measures s, the PostgreSQL part of phase that every tool runs, and
// records it under floorBackend.
func (rc *round) floor(ctx context.Context, phase string, s step) {
	rc.coldStart()
	u, _, err := rc.r.run(ctx, s)
	res := result{Round: rc.n, Tool: s[0].args[0], Backend: floorBackend, Phase: phase,
		Wall: u.Wall.Seconds(), CPU: u.CPU().Seconds(), MaxRSS: u.MaxRSS}
	if err != nil {
		res.Error = err.Error()
		rc.logf("  %-16s %-22s FAILED: %s", res.Tool, phase, err)
	} else {
		rc.logf("  %-16s %-22s wall %6.2fs  cpu %6.2fs  (alone, what every tool waits on)", res.Tool, phase, res.Wall, res.CPU)
	}
	rc.results = append(rc.results, res)
}

// coldStart gives the next measurement the same start as every other: the
// previous tool's dirty pages written out and, with --drop-caches, the
// page cache, dentries and inodes dropped. Without it, a tool that runs
// after another restore pays for that one's writeback, and on this kind
// of VM system time grows with the cached pages of earlier restores.
func (rc *round) coldStart() {
	syscall.Sync()
	if !rc.o.dropCaches {
		return
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		*rc.notes = appendOnce(*rc.notes, fmt.Sprintf("the page cache could not be dropped between tools (%v): tools measured later may pay for earlier ones' cached pages", err))
		rc.o.dropCaches = false
		return
	}
	*rc.notes = appendOnce(*rc.notes, "Before each tool's phase (and each floor), dirty data was written out and the page cache dropped: every tool starts cold, reading its repository and the source from disk (--drop-caches=false to keep caches).")
}

func withStdout(c command, path string) command {
	c.stdout = path
	return c
}

// has reports whether a result for tg and phase is recorded.
func (rc *round) has(tg *target, phase string) bool {
	for _, r := range rc.results {
		if r.Tool == tg.tool.name() && r.Backend == string(tg.kind) && r.Phase == phase {
			return true
		}
	}
	return false
}

func (rc *round) run(ctx context.Context, ds *dataset) error {
	rc.failed = map[*target]bool{}
	// One repository per tool and backend.
	var targets []*target
	for _, t := range rc.tools {
		for _, k := range rc.o.backends {
			if !t.supports(k) {
				*rc.notes = appendOnce(*rc.notes, fmt.Sprintf("%s has no %s backend: measured on the local folder only", t.name(), k))
				continue
			}
			tg := &target{tool: t, kind: k, dir: filepath.Join(rc.dir, "tools", t.name()+"-"+string(k)), s3: rc.srv}
			tg.repoDir = filepath.Join(tg.dir, "repo")
			if k == backendS3 {
				tg.bucket = fmt.Sprintf("bench-%s-%d", t.name(), rc.n)
				if err := rc.srv.createBucket(ctx, tg.bucket); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(tg.dir, 0o700); err != nil {
				return err
			}
			if err := t.setup(tg, &ds.in); err != nil {
				return fmt.Errorf("%s: set up: %w", tg, err)
			}
			targets = append(targets, tg)
		}
	}
	backupPhase := func(phase string, day int) {
		rc.logf("bench: %s", phase)
		// The dump alone, into nothing: every tool waits on it.
		rc.floor(ctx, phase, step{withStdout(ds.in.pgDump(), os.DevNull)})
		for _, tg := range targets {
			if ctx.Err() != nil {
				return
			}
			if rc.failed[tg] {
				if !rc.has(tg, phase) { // init failures are recorded as the first phase
					rc.record(tg, phase, usage{}, fmt.Errorf("%w: an earlier phase failed", errSkipPhase), nil)
				}
				continue
			}
			rc.coldStart()
			u, _, err := rc.r.runAll(ctx, tg.tool.backupSteps(tg, &ds.in, day))
			rc.record(tg, phase, u, err, nil)
		}
	}

	rc.logf("bench: initialising repositories")
	for _, tg := range targets {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, _, err := rc.r.runAll(ctx, tg.tool.initSteps(tg, &ds.in)); err != nil {
			rc.record(tg, phaseFull, usage{}, fmt.Errorf("init: %w", err), nil)
		}
	}
	backupPhase(phaseFull, 1)
	if err := ctx.Err(); err != nil {
		return err
	}

	rc.logf("bench: simulating a day of change")
	start := time.Now()
	// The day's dump is kept for the restore's floor, pg_restore alone.
	dump := ""
	if rc.o.restoreSQL {
		dump = filepath.Join(rc.dir, "day2.pgdump")
		defer os.Remove(dump)
	}
	if err := ds.mutate(ctx, rc.o.dayseed, dump); err != nil {
		return err
	}
	m := ds.mutation
	rc.logf("bench: day of change in %.1fs: +%d/-%d files (%s MiB new), %d users updated, +%d/-%d log rows",
		time.Since(start).Seconds(), m.FilesAdded, m.FilesDeleted, mib(m.ContentBytes), m.UsersUpdated, m.LogRowsAdded, m.LogRowsDeleted)
	backupPhase(phaseIncr, 2)
	if err := ctx.Err(); err != nil {
		return err
	}

	rc.logf("bench: %s", phaseRestore)
	want, err := ds.digest()
	if err != nil {
		return err
	}
	if dump != "" {
		// The dump's conversion to SQL alone, which every restore here
		// includes.
		rc.floor(ctx, phaseRestore, step{pgRestoreSQL(dump, os.DevNull)})
	}
	for _, tg := range targets {
		if ctx.Err() != nil {
			break
		}
		if rc.failed[tg] {
			rc.record(tg, phaseRestore, usage{}, fmt.Errorf("%w: an earlier phase failed", errSkipPhase), nil)
			continue
		}
		dst := filepath.Join(rc.dir, "restore", tg.tool.name()+"-"+string(tg.kind))
		steps, out, err := tg.tool.restoreSteps(tg, &ds.in, dst, rc.o.restoreSQL)
		if err != nil {
			rc.record(tg, phaseRestore, usage{}, err, nil)
			continue
		}
		rc.coldStart()
		u, _, err := rc.r.runAll(ctx, steps)
		var check *restoreCheck
		if err == nil {
			// mbackup returns once the restore is on disk; the others
			// leave it to the kernel's writeback (strace: no fsync of
			// restored files). How long that takes is part of the
			// comparison, reported beside the time: measured first,
			// before verification reads the files.
			var su usage
			if su, _, err = rc.r.runAll(ctx, []step{{command{args: []string{"sync", "--file-system", dst}}}}); err == nil {
				check = &restoreCheck{verified: true, sync: su.Wall}
				if verr := verifyRestore(want, out); verr != nil {
					err = fmt.Errorf("verify: %w", verr)
					check.verified = false
				}
			}
		}
		rc.record(tg, phaseRestore, u, err, check)
		if !rc.o.keep {
			_ = os.RemoveAll(dst)
		}
	}
	return ctx.Err()
}

// methodNotes explains how to read the table.
func methodNotes(o *options) []string {
	notes := []string{
		"wall: elapsed time of the phase; CPU: user+system seconds of every process of the phase (pg_dump and pg_restore included, for every tool); peak RSS: the largest resident set of any one process; repo: bytes in the repository folder or the bucket's folder on the S3 server's disk, after the phase.",
		"Inputs: every tool backs up the same `pg_dump -Fc -Z0` stream and the moodledata folder minus mbackup's default excludes. mbackup runs pg_dump itself; restic gets it on stdin (`--stdin-from-command` from 0.17, a pipe before) in a second snapshot, as restic cannot read stdin and a folder in one; borg reads it as `-` with `--stdin-name` in the same archive; kopia uses `snapshot create --stdin-file`.",
		"Settings: defaults except compression: restic auto (its default), borg `--compression zstd,3` with `repokey` encryption, kopia `zstd`; caches in the work folder, warm for day 2 as on a real host.",
		"S3: versitygw on loopback (its posix backend on the same disk and the same two cores as the tools), plain HTTP, connections kept alive as S3 services do (versitygw's own default closes each connection after one request).",
	}
	if o.restoreSQL {
		notes = append(notes, "Restore: moodledata to a folder and the database as plain SQL. mbackup `restore --at latest --target-dir` writes db.sql itself; the other tools extract the dump and the time includes `pg_restore -f db.sql` on it (restic streams `dump` into pg_restore). Each restore is verified: moodledata identical to the source (content and modes), db.sql complete. Run with --restore-db dump to time the raw dump extraction instead.")
	} else {
		notes = append(notes, "Restore: moodledata to a folder and the database as the raw pg_dump file for restic, borg and kopia; mbackup `restore --target-dir` converts to plain SQL (db.sql) on the way, which the others are not charged for here (--restore-db sql charges them).")
	}
	notes = append(notes, "Durability: right after each restore the bench times `sync --file-system` on its folder. mbackup syncs what it restored before it returns (its commit is crash-safe); restic, borg and kopia do not fsync restored files (strace), so their restores end with the data still on its way to the disk. \"wall until on disk\" adds that time.")
	return notes
}

func containsKind(ks []backendKind, k backendKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// commandLine reconstructs how the harness was invoked, for the report.
func commandLine(o *options) string {
	parts := []string{"go run ./scripts/bench"}
	for _, a := range o.args {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

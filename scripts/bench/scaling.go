package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// scalePoint is mbackup measured at one size.
type scalePoint struct {
	Factor    float64  `json:"factor"`
	Files     int64    `json:"files"`
	Bytes     int64    `json:"bytes"`
	DumpBytes int64    `json:"dump_bytes"`
	Results   []result `json:"results"`
}

// runScaling measures mbackup alone at o.factors times the files (the
// database keeps its size), on the first of --backends: how time and peak
// RSS grow with the number of files (issue 7: at 10x the files, time at
// most ~10x and memory well under 2x).
func runScaling(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	versions := map[string]string{}
	r := &runner{timeout: o.timeout, verbose: o.verbose, log: stderr, secrets: []string{benchPassword}}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	if err := checkCommon(ctx, o, versions); err != nil {
		return err
	}
	bin, err := filepath.Abs(o.mbackup)
	if err != nil {
		return err
	}
	mb := &mbackupTool{bin: bin}
	if versions["mbackup"], err = mb.check(ctx, r); err != nil {
		return usageError{err.Error()}
	}
	kind := o.backends[0]
	ws, err := newWorkspace(o, stderr)
	if err != nil {
		return err
	}
	defer ws.close()
	var srv *s3Server
	if kind == backendS3 {
		if srv, err = startS3(ctx, ws.dir); err != nil {
			return usageError{err.Error()}
		}
		ws.onClose(srv.stop)
		r.secrets = append(r.secrets, srv.SecretKey)
	}
	db := dbName()
	ws.onClose(func() {
		if !o.keep {
			_ = (&dataset{adminURL: o.pg, db: db}).drop(context.WithoutCancel(ctx))
		}
	})

	var points []scalePoint
	failed := false
	for i, f := range o.factors {
		spec, err := o.spec(f)
		if err != nil {
			return err
		}
		dir := filepath.Join(ws.dir, fmt.Sprintf("x%g", f))
		logf("bench: scaling %gx: generating %d files, %d log rows", f, spec.Files, spec.LogRows)
		ds, err := generate(ctx, o.pg, db, filepath.Join(dir, "env"), spec, benchPassword)
		if err != nil {
			return err
		}
		pt := scalePoint{Factor: f, Files: ds.files - ds.junkFiles, Bytes: ds.bytes - ds.junkBytes, DumpBytes: ds.dumpBytes}
		tg := &target{tool: mb, kind: kind, dir: filepath.Join(dir, "mbackup"), s3: srv}
		tg.repoDir = filepath.Join(tg.dir, "repo")
		if kind == backendS3 {
			tg.bucket = fmt.Sprintf("scaling-%d", i)
			if err := srv.createBucket(ctx, tg.bucket); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(tg.dir, 0o700); err != nil {
			return err
		}
		if err := mb.setup(tg, &ds.in); err != nil {
			return err
		}
		measure := func(phase string, steps []step, out *restored, want map[string]string) bool {
			u, _, err := r.runAll(ctx, steps)
			res := newResult(tg, phase, u)
			if err == nil && out != nil {
				ok := true
				if verr := verifyRestore(want, *out); verr != nil {
					err, ok = fmt.Errorf("verify: %w", verr), false
				}
				res.Verified = &ok
			}
			if err != nil {
				res.Error = err.Error()
				logf("  %gx %-22s FAILED: %s", f, phase, err)
			} else {
				res.RepoSize = tg.size()
				logf("  %gx %-22s wall %6.2fs  cpu %6.2fs  rss %6s MiB  repo %7s MiB", f, phase, res.Wall, res.CPU, mib(res.MaxRSS), mib(res.RepoSize))
			}
			pt.Results = append(pt.Results, res)
			return err == nil
		}
		ok := true
		if _, _, err := r.runAll(ctx, mb.initSteps(tg, &ds.in)); err != nil {
			return fmt.Errorf("mbackup init: %w", err)
		}
		ok = measure(phaseFull, mb.backupSteps(tg, &ds.in, 1), nil, nil)
		if ok {
			if err := ds.mutate(ctx, o.dayseed, ""); err != nil {
				return err
			}
			ok = measure(phaseIncr, mb.backupSteps(tg, &ds.in, 2), nil, nil)
		}
		if ok {
			dst := filepath.Join(dir, "restore")
			steps, out, err := mb.restoreSteps(tg, &ds.in, dst, true)
			switch {
			case errors.Is(err, errSkipPhase):
				logf("  %gx %-22s skipped: %s", f, phaseRestore, strings.TrimPrefix(err.Error(), errSkipPhase.Error()+": "))
			case err != nil:
				return err
			default:
				want, err := ds.digest()
				if err != nil {
					return err
				}
				ok = measure(phaseRestore, steps, &out, want)
			}
		}
		failed = failed || !ok
		points = append(points, pt)
		if !o.keep {
			_ = os.RemoveAll(dir)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "## mbackup scaling (%s backend)\n\n", kind)
	fmt.Fprintf(&b, "Command: `%s`  \nRun: %s on %s; %s  \n", commandLine(o), time.Now().Format("2006-01-02 15:04 MST"), machine(), versions["mbackup"])
	fmt.Fprintf(&b, "Files are multiplied by the factor; the database keeps its size. Files and MiB count what is backed up (junk excluded).\n\n")
	fmt.Fprintf(&b, "| files × | files | moodledata MiB | dump MiB | phase | wall s | CPU s | peak RSS MiB | repo MiB | wall / 1st | RSS / 1st |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
	base := map[string]result{}
	for _, pt := range points {
		for _, res := range pt.Results {
			if res.Error != "" {
				fmt.Fprintf(&b, "| %g | %d | %s | %s | %s | - | - | - | - | - | FAILED: %s |\n",
					pt.Factor, pt.Files, mib(pt.Bytes), mib(pt.DumpBytes), res.Phase, firstLine(res.Error))
				continue
			}
			b0, ok := base[res.Phase]
			if !ok {
				base[res.Phase], b0 = res, res
			}
			fmt.Fprintf(&b, "| %g | %d | %s | %s | %s | %.2f | %.2f | %s | %s | %.2f | %.2f |\n",
				pt.Factor, pt.Files, mib(pt.Bytes), mib(pt.DumpBytes), res.Phase, res.Wall, res.CPU, mib(res.MaxRSS), mib(res.RepoSize),
				res.Wall/b0.Wall, float64(res.MaxRSS)/float64(b0.MaxRSS))
		}
	}
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, b.String())
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("write --out: %w", err)
		}
	}
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, map[string]any{"command": commandLine(o), "machine": machine(), "versions": versions, "points": points}); err != nil {
			return err
		}
	}
	if failed {
		return errMeasurementFailed
	}
	return nil
}

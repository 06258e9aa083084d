package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mbackup/mbackup/scripts/moodlegen"
)

// usageError is bad input or a missing prerequisite: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// errMeasurementFailed says that some measurement failed: exit status 1.
var errMeasurementFailed = errors.New("some measurements failed (see the table)")

func main() {
	if len(os.Args) > 1 && os.Args[1] == reapArg {
		os.Exit(reap(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the parsed flags.
type options struct {
	workdir    string
	keep       bool
	tools      []string
	backends   []backendKind
	preset     string
	scale      float64
	files      int
	dbRows     int
	seed       uint64
	dayseed    uint64
	pg         string
	mbackup    string
	out        string
	jsonOut    string
	timeout    time.Duration
	restoreSQL bool
	dropCaches bool
	repeat     int
	stat       string
	scaling    bool
	factors    []float64
	profileDir string
	verbose    bool
	args       []string
}

const usageText = `usage: bench [flags]

Side-by-side benchmark of mbackup against restic, borg and kopia on a
generated Moodle environment (issue 7). Needs PostgreSQL (--pg), pg_dump and
pg_restore, the mbackup binary (make build), versitygw for the S3 backend
(make tools), and the tools to compare: apt-get install -y restic borgbackup
(kopia is used when installed).

Modes:
  (default)     every tool, full backup / incremental / restore, local and S3
  --scaling     mbackup alone at --factors times the files; time and RSS per size
  --profile DIR mbackup's backups and restore run in-process, with CPU and
                allocation profiles (go tool pprof -top DIR/backup1.cpu.pprof)

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{args: args}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	var tools, backends, factors, restoreFormat string
	fs.StringVar(&o.workdir, "workdir", "", "work folder for data, repositories and restores (default: a new temporary folder)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder and the generated database afterwards")
	fs.StringVar(&tools, "tools", "mbackup,restic,borg,kopia", "tools to measure, comma-separated (kopia is skipped when not installed)")
	fs.StringVar(&backends, "backends", "local,s3", "repository backends: local, s3")
	fs.StringVar(&o.preset, "preset", "bench", "moodlegen size preset: tiny, demo or bench")
	fs.Float64Var(&o.scale, "scale", 1, "multiply every count of the preset (files, users, rows...) by this factor")
	fs.IntVar(&o.files, "files", 0, "number of uploaded files (overrides the preset; 0: preset × scale)")
	fs.IntVar(&o.dbRows, "db-rows", 0, "rows of the log table, which dominates the database (overrides the preset; 0: preset × scale)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated environment")
	fs.Uint64Var(&o.dayseed, "day-seed", 2, "seed of the simulated day of change between the backups")
	fs.StringVar(&o.pg, "pg", "postgres://postgres@127.0.0.1:5432/postgres", "admin URL of the PostgreSQL server that holds the generated database")
	fs.StringVar(&o.mbackup, "mbackup", "bin/mbackup", "the mbackup binary to measure")
	fs.StringVar(&o.out, "out", "", "also write the markdown table to this file")
	fs.StringVar(&o.jsonOut, "json", "", "also write every measurement as JSON to this file")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "limit for each command; a command over it is killed with its process group")
	fs.StringVar(&restoreFormat, "restore-db", "sql", "what the other tools' restore produces from the dump: sql (pg_restore -f db.sql, like mbackup --target-dir) or dump (the raw pg_dump file)")
	fs.BoolVar(&o.dropCaches, "drop-caches", true, "before each tool's phase, write dirty data to disk and drop the page cache (needs root), so that no tool inherits another's cache or writeback")
	fs.IntVar(&o.repeat, "repeat", 1, "run the whole comparison this many times on freshly generated data (see --stat)")
	fs.StringVar(&o.stat, "stat", "median", "with --repeat, report the median or the min of each time (min: the best estimate when other work disturbs the machine)")
	fs.BoolVar(&o.scaling, "scaling", false, "measure mbackup alone at --factors times the files instead of comparing tools")
	fs.StringVar(&factors, "factors", "1,3,10", "file-count multipliers for --scaling")
	fs.StringVar(&o.profileDir, "profile", "", "write CPU and allocation profiles of mbackup's backups and restore (run in-process) to this folder instead of comparing tools")
	fs.BoolVar(&o.verbose, "v", false, "print every command as it runs")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (all settings are flags; see -h)", fs.Arg(0))
	}
	known := []string{"mbackup", "restic", "borg", "kopia"}
	for _, t := range splitList(tools) {
		if !slices.Contains(known, t) {
			return nil, usagef("--tools: unknown tool %q (want some of %s)", t, strings.Join(known, ","))
		}
		if !slices.Contains(o.tools, t) {
			o.tools = append(o.tools, t)
		}
	}
	if len(o.tools) == 0 {
		return nil, usagef("--tools: name at least one tool")
	}
	for _, b := range splitList(backends) {
		k := backendKind(b)
		if k != backendLocal && k != backendS3 {
			return nil, usagef("--backends: unknown backend %q (want local, s3)", b)
		}
		if !slices.Contains(o.backends, k) {
			o.backends = append(o.backends, k)
		}
	}
	if len(o.backends) == 0 {
		return nil, usagef("--backends: name at least one backend")
	}
	for _, f := range splitList(factors) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v > 0) {
			return nil, usagef("--factors: %q is not a positive number", f)
		}
		o.factors = append(o.factors, v)
	}
	switch restoreFormat {
	case "sql":
		o.restoreSQL = true
	case "dump":
	default:
		return nil, usagef("--restore-db %q: want sql or dump", restoreFormat)
	}
	if !(o.scale > 0) {
		return nil, usagef("--scale %v: must be a positive number", o.scale)
	}
	if o.files < 0 || o.dbRows < 0 {
		return nil, usagef("--files and --db-rows must not be negative")
	}
	if o.stat != "median" && o.stat != "min" {
		return nil, usagef("--stat %q: want median or min", o.stat)
	}
	if o.repeat < 1 {
		return nil, usagef("--repeat must be at least 1")
	}
	if o.timeout <= 0 {
		return nil, usagef("--timeout must be positive")
	}
	if o.scaling && o.profileDir != "" {
		return nil, usagef("--scaling and --profile are separate modes: give one")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// spec returns the environment to generate, with the file count multiplied
// by fileFactor (the database keeps its size).
func (o *options) spec(fileFactor float64) (moodlegen.Spec, error) {
	spec, err := moodlegen.Preset(o.preset)
	if err != nil {
		return spec, usagef("--preset: %v", err)
	}
	spec = spec.Scaled(o.scale)
	if o.files > 0 {
		f := float64(o.files) / float64(max(spec.Files, 1))
		files := spec.Scaled(f)
		spec.Files, spec.TrashFiles, spec.Junk = files.Files, files.TrashFiles, files.Junk
	}
	if o.dbRows > 0 {
		spec.LogRows = o.dbRows
	}
	if fileFactor != 1 {
		files := spec.Scaled(fileFactor)
		spec.Files, spec.TrashFiles, spec.Junk = files.Files, files.TrashFiles, files.Junk
	}
	spec.Seed = o.seed
	return spec, spec.Validate()
}

func numCPU() int { return runtime.NumCPU() }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		switch {
		case o.scaling:
			err = runScaling(ctx, o, stdout, stderr)
		case o.profileDir != "":
			err = runProfile(ctx, o, stdout, stderr)
		default:
			err = runCompare(ctx, o, stdout, stderr)
		}
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
}

// workspace is the work folder and what must be cleaned up at the end.
type workspace struct {
	dir      string
	existed  bool // given by --workdir and already there: empty it, keep it
	keep     bool
	cleanups []func()
	log      io.Writer
}

func newWorkspace(o *options, log io.Writer) (*workspace, error) {
	w := &workspace{keep: o.keep, log: log}
	if o.workdir == "" {
		dir, err := os.MkdirTemp("", "mbackup-bench-")
		if err != nil {
			return nil, err
		}
		w.dir = dir
	} else {
		dir, err := filepath.Abs(o.workdir)
		if err != nil {
			return nil, err
		}
		entries, err := os.ReadDir(dir)
		if err == nil && len(entries) > 0 {
			return nil, usagef("--workdir %s is not empty: choose an empty or new folder", dir)
		}
		w.existed = err == nil
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		w.dir = dir
	}
	return w, nil
}

// onClose registers cleanup work, run in reverse order by close.
func (w *workspace) onClose(f func()) { w.cleanups = append(w.cleanups, f) }

func (w *workspace) close() {
	for i := len(w.cleanups) - 1; i >= 0; i-- {
		w.cleanups[i]()
	}
	if w.keep {
		fmt.Fprintf(w.log, "kept the work folder %s\n", w.dir)
		return
	}
	dirs := []string{w.dir}
	if w.existed {
		dirs, _ = filepath.Glob(filepath.Join(w.dir, "*"))
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			fmt.Fprintf(w.log, "bench: remove %s: %v\n", d, err)
		}
	}
}

// checkCommon verifies what every mode needs: PostgreSQL and its client
// programs.
func checkCommon(ctx context.Context, o *options, versions map[string]string) error {
	for _, p := range []string{"pg_dump", "pg_restore"} {
		if _, err := lookPath(p); err != nil {
			return usagef("%s is not installed: apt-get install -y postgresql-client", p)
		}
	}
	v, err := versionOf(ctx, "pg_dump", "--version")
	if err != nil {
		return err
	}
	versions["pg_dump"] = v
	sv, err := checkPostgres(ctx, o.pg)
	if err != nil {
		return usageError{err.Error()}
	}
	versions["postgres"] = sv
	return nil
}

// dbName returns a database name unique to this run.
func dbName() string { return "mbackup_bench_" + randomHex(4) }

// Command moodlegen creates and changes Moodle-like test environments (a
// PostgreSQL database, a moodledata folder, a config.php) for the mbackup
// demo, integration tests and benchmarks. See package
// github.com/mbackup/mbackup/scripts/moodlegen.
//
//	moodlegen create --pg URL --db NAME --moodledata DIR [--config-php PATH] [--preset tiny|demo|bench] [--seed N] [--scale X] [--replace] [--json]
//	moodlegen mutate --pg URL --db NAME --moodledata DIR --seed N [--preset P] [--spec-seed N] [--scale X] [amount flags] [--json]
//	moodlegen digest --pg URL --db NAME --moodledata DIR [--exclude a,b] [--json]
//
// Exit codes: 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mbackup/mbackup/scripts/moodlegen"
)

const defaultPG = "postgres://postgres@127.0.0.1:5432/postgres"

const usage = `usage:
  moodlegen create --pg URL --db NAME --moodledata DIR [--config-php PATH] [--preset tiny|demo|bench] [--seed N] [--scale X] [--replace] [--json]
  moodlegen mutate --pg URL --db NAME --moodledata DIR --seed N [--preset P] [--spec-seed N] [--scale X] [amount flags] [--json]
  moodlegen digest --pg URL --db NAME --moodledata DIR [--exclude a,b] [--json]
Run "moodlegen COMMAND -h" for the flags of a command.
`

// usageError marks bad input: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "create":
		err = create(ctx, args[1:], stdout, stderr)
	case "mutate":
		err = mutate(ctx, args[1:], stdout, stderr)
	case "digest":
		err = digest(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usageError{fmt.Sprintf("unknown command %q (want create, mutate or digest)", args[0])}
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "moodlegen:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "moodlegen:", err)
		return 1
	}
}

// common holds the flags every command shares.
type common struct {
	pg, db, moodledata string
	json               bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.pg, "pg", defaultPG, "admin connection URL of the PostgreSQL server")
	fs.StringVar(&c.db, "db", "", "database name (required)")
	fs.StringVar(&c.moodledata, "moodledata", "", "moodledata folder (required)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object instead of a summary line")
}

func (c *common) check() error {
	if c.db == "" {
		return usageError{"--db is required: name the database to generate or change"}
	}
	if c.moodledata == "" {
		return usageError{"--moodledata is required: name the folder to generate or change"}
	}
	if _, err := moodlegen.DatabaseURL(c.pg, c.db); err != nil {
		return usageError{"--pg: " + err.Error()}
	}
	return nil
}

// specFlags selects a Spec.
type specFlags struct {
	preset string
	seed   uint64
	scale  float64
	www    string
}

func (s *specFlags) register(fs *flag.FlagSet, seedName string) {
	fs.StringVar(&s.preset, "preset", "demo", "size preset: tiny, demo or bench")
	fs.Uint64Var(&s.seed, seedName, 1, "seed of the environment")
	fs.Float64Var(&s.scale, "scale", 1, "multiply every count of the preset by this factor")
	fs.StringVar(&s.www, "wwwroot", moodlegen.DefaultWWWRoot, "site URL used in settings and config.php")
}

func (s *specFlags) spec() (moodlegen.Spec, error) {
	spec, err := moodlegen.Preset(s.preset)
	if err != nil {
		return spec, usageError{"--preset: " + err.Error()}
	}
	if !(s.scale > 0) {
		return spec, usageError{fmt.Sprintf("--scale %v: must be a positive number", s.scale)}
	}
	spec = spec.Scaled(s.scale)
	spec.Seed = s.seed
	spec.WWWRoot = s.www
	return spec, nil
}

func parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func create(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("moodlegen create", flag.ContinueOnError)
	var c common
	var sf specFlags
	c.register(fs)
	sf.register(fs, "seed")
	configPHP := fs.String("config-php", "", "also write a config.php here")
	replace := fs.Bool("replace", false, "replace an existing generated moodledata folder")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	spec, err := sf.spec()
	if err != nil {
		return err
	}
	if err := clearMoodledata(c.moodledata, *replace); err != nil {
		return err
	}
	start := time.Now()
	var st moodlegen.Stats
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return moodlegen.CreateDatabase(gctx, c.pg, c.db, spec) })
	g.Go(func() (err error) {
		st, err = moodlegen.CreateMoodledataContext(gctx, c.moodledata, spec)
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if *configPHP != "" {
		dataRoot, err := filepath.Abs(c.moodledata)
		if err != nil {
			return fmt.Errorf("resolve %s: %w", c.moodledata, err)
		}
		cfg, err := moodlegen.ConfigFromURL(c.pg, c.db, dataRoot)
		if err != nil {
			return err
		}
		cfg.WWWRoot = spec.WWWRoot
		if err := moodlegen.WriteConfigPHP(*configPHP, cfg); err != nil {
			return err
		}
	}
	dbURL, _ := moodlegen.DatabaseURL(c.pg, c.db)
	db, err := moodlegen.InspectDatabase(ctx, dbURL)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if c.json {
		return writeJSON(stdout, map[string]any{
			"preset": strings.ToLower(sf.preset), "seed": spec.Seed, "scale": sf.scale,
			"database": c.db, "db_tables": db.Tables, "db_rows": db.Rows, "db_bytes": db.Bytes,
			"db_rows_by_table": db.ByTable,
			"moodledata":       c.moodledata, "files": st.Files, "bytes": st.Bytes, "dirs": st.Dirs,
			"symlinks": st.Symlinks, "filedir_files": st.FiledirFiles, "filedir_bytes": st.FiledirBytes,
			"trash_files": st.TrashFiles, "trash_bytes": st.TrashBytes, "junk_files": st.JunkFiles,
			"junk_bytes": st.JunkBytes, "config_php": nullable(*configPHP),
			"duration_seconds": elapsed.Seconds(),
		})
	}
	fmt.Fprintf(stdout, "created %s environment (seed %d): database %s: %d tables, %d rows, %s; moodledata %s: %d files, %s (filedir %d files, %s; junk %d files, %s) in %.1fs\n",
		strings.ToLower(sf.preset), spec.Seed, c.db, db.Tables, db.Rows, size(db.Bytes), c.moodledata,
		st.Files, size(st.Bytes), st.FiledirFiles, size(st.FiledirBytes), st.JunkFiles, size(st.JunkBytes),
		elapsed.Seconds())
	return nil
}

// clearMoodledata makes room for a new tree. It only ever deletes a folder
// that looks like a moodledata (it has filedir/warning.txt).
func clearMoodledata(dir string, replace bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	if !replace {
		return usageError{fmt.Sprintf("--moodledata %s is not empty: pass --replace to overwrite a generated moodledata, or choose another folder", dir)}
	}
	if _, err := os.Stat(filepath.Join(dir, "filedir", "warning.txt")); err != nil {
		return usageError{fmt.Sprintf("--moodledata %s does not look like a moodledata folder (no filedir/warning.txt): refusing to delete it", dir)}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

func mutate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("moodlegen mutate", flag.ContinueOnError)
	var c common
	var sf specFlags
	var m moodlegen.Mutation
	c.register(fs)
	sf.register(fs, "spec-seed")
	fs.Uint64Var(&m.Seed, "seed", 0, "seed of the simulated day (required; use a new one per day)")
	fs.Float64Var(&m.RowUpdatesPct, "row-updates-pct", 0, "percent of mdl_user rows to update (0: 1%, negative: none)")
	fs.IntVar(&m.NewLogRows, "new-log-rows", 0, "log rows to append (0: 1% of the preset's, negative: none)")
	fs.IntVar(&m.DeletedLogRows, "deleted-log-rows", 0, "oldest log rows to delete (0: 1/300 of the preset's, negative: none)")
	fs.Float64Var(&m.NewFilesPct, "new-files-pct", 0, "uploads in percent of the preset's files (0: 1%, negative: none)")
	fs.IntVar(&m.DeletedFiles, "deleted-files", 0, "files to delete (0: a third of the uploads, negative: none)")
	fs.IntVar(&m.ChangedConfig, "changed-config", 0, "mdl_config rows to change (0: 1, negative: none)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if !seedSet {
		return usageError{"--seed is required: each simulated day needs its own seed"}
	}
	spec, err := sf.spec()
	if err != nil {
		return err
	}
	start := time.Now()
	ms, err := moodlegen.Mutate(ctx, c.pg, c.db, c.moodledata, spec, m)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if c.json {
		return writeJSON(stdout, map[string]any{
			"database": c.db, "moodledata": c.moodledata, "seed": m.Seed,
			"day_start": ms.DayStart.Format(time.RFC3339), "day_end": ms.DayEnd.Format(time.RFC3339),
			"users_updated": ms.UsersUpdated, "log_rows_added": ms.LogRowsAdded, "log_rows_deleted": ms.LogRowsDeleted,
			"files_added": ms.FilesAdded, "files_deleted": ms.FilesDeleted, "content_added": ms.ContentAdded,
			"content_bytes": ms.ContentBytes, "content_trashed": ms.ContentTrashed,
			"config_changed": ms.ConfigChanged, "junk_files": ms.JunkFiles, "duration_seconds": elapsed.Seconds(),
		})
	}
	fmt.Fprintf(stdout, "mutated %s (day %s): %d users updated, +%d/-%d log rows, +%d/-%d files (%d new contents, %s; %d moved to trash), %d config changes, %d junk files rewritten in %.1fs\n",
		c.db, ms.DayStart.Format("2006-01-02 15:04"), ms.UsersUpdated, ms.LogRowsAdded, ms.LogRowsDeleted,
		ms.FilesAdded, ms.FilesDeleted, ms.ContentAdded, size(ms.ContentBytes), ms.ContentTrashed,
		ms.ConfigChanged, ms.JunkFiles, elapsed.Seconds())
	return nil
}

func digest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("moodlegen digest", flag.ContinueOnError)
	var c common
	c.register(fs)
	exclude := fs.String("exclude", strings.Join(append(moodlegen.JunkDirs(), "climaintenance.html"), ","),
		"comma-separated moodledata paths to leave out")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	var ex []string
	for _, e := range strings.Split(*exclude, ",") {
		if e = strings.TrimSpace(e); e != "" {
			ex = append(ex, e)
		}
	}
	dbURL, _ := moodlegen.DatabaseURL(c.pg, c.db)
	db, err := moodlegen.DatabaseDigest(ctx, dbURL)
	if err != nil {
		return err
	}
	tree, err := moodlegen.TreeDigest(c.moodledata, ex)
	if err != nil {
		return err
	}
	dbSum, treeSum := summarize(db), summarizeTree(tree)
	if c.json {
		return writeJSON(stdout, map[string]any{
			"database": c.db, "database_digest": dbSum, "tables": db.Tables, "sequences": db.Sequences,
			"schema": db.Schema, "moodledata": c.moodledata, "moodledata_digest": treeSum,
			"moodledata_entries": len(tree), "excluded": ex,
		})
	}
	fmt.Fprintf(stdout, "database %s %s (%d tables); moodledata %s %s (%d entries)\n",
		c.db, dbSum, len(db.Tables), c.moodledata, treeSum, len(tree))
	return nil
}

// summarize folds a database digest into one hash for scripts to compare.
func summarize(d moodlegen.Digest) string {
	var lines []string
	for t, td := range d.Tables {
		lines = append(lines, fmt.Sprintf("table %s %d %s", t, td.Rows, td.Hash))
	}
	for s, v := range d.Sequences {
		lines = append(lines, fmt.Sprintf("sequence %s %d", s, v))
	}
	lines = append(lines, "schema "+d.Schema)
	return hashLines(lines)
}

func summarizeTree(tree map[string]string) string {
	lines := make([]string, 0, len(tree))
	for p, v := range tree {
		lines = append(lines, p+"\x00"+v)
	}
	return hashLines(lines)
}

func hashLines(lines []string) string {
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// size formats a byte count for humans.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

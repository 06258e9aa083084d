package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/restore"
	"github.com/mbackup/mbackup/restore/when"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

type restoreFlags struct {
	at, snapshotID, to, targetDir  string
	dbOnly, filesOnly, dryRun, yes bool
	jobs                           int
	clone                          cloneFlags // --clone: a side restore (cmd_staging.go)
}

func (a *app) restoreCommand() *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore ENV [--at WHEN | --snapshot ID] [--to ENV2 | --target-dir DIR | --clone NEW_ENV_NAME] [--db-only | --files-only] [--dry-run] [--yes]",
		Short: "Restore a snapshot in place, into another environment, or into a folder",
		Long: `Restore a snapshot of ENV. It first prints the snapshot it chose.

In place (the default) or --to ENV2 (another environment, or ENV2/staging
for a staging block): maintenance mode is on while it works; the database is
restored into a fresh database and swapped in one transaction, keeping the
previous one as <name>_before_restore_<YYYYMMDDHHMMSS>; moodledata gets only
the files that differ, files the snapshot lacks are removed (excluded folders
are left alone); everything is verified before the switch. Asks for
confirmation unless --yes.

--target-dir DIR writes DIR/moodledata/, DIR/db.sql (plain SQL for psql) and
DIR/config.php, touching nothing live.

--clone NEW_ENV_NAME is a side restore: ENV's Jelastic environment is cloned
to the new environment, whose config.php is pointed at its own database, and
the snapshot is replayed into the clone and sanitized like a staging copy, to
recover a course without touching production. The clone's database,
moodledata and config.php are ENV's with the Jelastic name replaced by the
new one (override with --clone-database, --clone-moodledata,
--clone-config-php; the URL with --clone-wwwroot).

WHEN: latest, now, today, yesterday, YYYY-MM-DD, "YYYY-MM-DD HH:MM[:SS]",
RFC 3339, "30m ago", "3h ago", "2 days ago", "1 week ago"; the newest
snapshot taken at or before it is used.`,
		Args: nargs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRestore(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.at, "at", "", "restore the newest snapshot taken at or before WHEN (default latest)")
	fl.StringVar(&f.snapshotID, "snapshot", "", "restore this snapshot (ID or unique prefix)")
	fl.StringVar(&f.to, "to", "", "restore into another environment (ENV2, or ENV2/staging)")
	fl.StringVar(&f.targetDir, "target-dir", "", "write moodledata/, db.sql and config.php into this folder")
	fl.BoolVar(&f.dbOnly, "db-only", false, "restore only the database")
	fl.BoolVar(&f.filesOnly, "files-only", false, "restore only moodledata")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVar(&f.yes, "yes", false, "do not ask for confirmation")
	fl.IntVar(&f.jobs, "jobs", 0, "parallel pg_restore jobs for large dumps (default: number of CPUs)")
	f.clone.register(cmd)
	return cmd
}

func (f restoreFlags) validate() error {
	switch {
	case f.at != "" && f.snapshotID != "":
		return usagef("give --at or --snapshot, not both")
	case f.to != "" && f.targetDir != "":
		return usagef("give --to or --target-dir, not both")
	case f.dbOnly && f.filesOnly:
		return usagef("give --db-only or --files-only, not both")
	}
	return nil
}

func (a *app) runRestore(ctx context.Context, envName string, f restoreFlags) error {
	if f.clone.set() {
		return a.runSideRestore(ctx, envName, f)
	}
	if err := f.validate(); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	env, err := cfg.Env(envName)
	if err != nil {
		return err
	}
	var target restore.Target
	if f.targetDir == "" {
		if target, err = restoreTarget(cfg, env, f.to); err != nil {
			return err
		}
	}
	repo, _, err := a.repository(ctx)
	if err != nil {
		return err
	}
	sn, err := a.chooseSnapshot(ctx, repo, cfg, env.Name, f.at, f.snapshotID)
	if err != nil {
		return err
	}
	opts := restore.Options{DBOnly: f.dbOnly, FilesOnly: f.filesOnly, DryRun: f.dryRun, Jobs: f.jobs, Log: a.log,
		Fetchers: a.engineOptions(cfg).Uploaders, PgRestore: env.PgRestore()}
	bar := a.newProgress("restoring", -1, true)
	opts.Progress = func(p restore.Progress) {
		bar.describe(p.Phase)
		bar.set(p.BytesDone, p.BytesTotal)
	}

	var rep *restore.Report
	if f.targetDir != "" {
		rep, err = restore.ToDir(ctx, repo, sn, f.targetDir, opts)
	} else {
		if !f.dryRun {
			if err := a.confirm(f.yes, fmt.Sprintf("Restore snapshot %s of %s into %s: %s. Continue?", sn.ID().Short(), env.Name, target.Name, describeTarget(target, f))); err != nil {
				bar.finish()
				return err
			}
		}
		rep, err = restore.InPlace(ctx, repo, sn, target, opts)
		err = explainDBAuth(err, target.Name, cfg.File)
	}
	bar.finish()
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(rep)
	}
	a.printReport(rep)
	return nil
}

// restoreTarget resolves --to (empty: ENV itself).
func restoreTarget(cfg *config.Config, env *config.Environment, to string) (restore.Target, error) {
	dest := env
	staging := false
	if to != "" {
		name, suffix, hasSlash := strings.Cut(to, "/")
		if hasSlash && suffix != "staging" {
			return restore.Target{}, usagef("--to %q: want ENV or ENV/staging", to)
		}
		staging = hasSlash
		e, err := cfg.Env(name)
		if err != nil {
			// Also accept a staging block by its Jelastic name.
			for _, c := range cfg.Environments() {
				if c.Staging != nil && c.Staging.JelasticEnv == to {
					e, err, staging = c, nil, true
					break
				}
			}
			if err != nil {
				return restore.Target{}, err
			}
		}
		dest = e
	}
	if staging {
		s := dest.Staging
		if s == nil {
			return restore.Target{}, usagef("%s has no staging block", dest.Name)
		}
		pw, err := s.DatabasePassword()
		if err != nil {
			return restore.Target{}, err
		}
		return restore.Target{Name: dest.Name + "/staging", DB: &postgres.DB{URL: s.Database.ConnString(), Password: pw.Value()},
			Moodledata: s.Moodledata, Exclude: env.Exclude}, nil
	}
	pw, err := dest.DatabasePassword()
	if err != nil {
		return restore.Target{}, err
	}
	return restore.Target{Name: dest.Name, DB: &postgres.DB{URL: dest.Database.ConnString(), Password: pw.Value()},
		Moodledata: dest.Moodledata, Exclude: dest.Exclude}, nil
}

func describeTarget(t restore.Target, f restoreFlags) string {
	var parts []string
	if !f.filesOnly && t.DB != nil {
		parts = append(parts, "database "+t.DB.String()+" is replaced (the current one is kept, renamed)")
	}
	if !f.dbOnly && t.Moodledata != "" {
		parts = append(parts, "moodledata "+t.Moodledata+" is made equal to the snapshot")
	}
	return strings.Join(parts, "; ")
}

// chooseSnapshot picks the snapshot by --snapshot or --at (default latest)
// and prints it before anything changes.
func (a *app) chooseSnapshot(ctx context.Context, repo *engine.Repository, cfg *config.Config, env, at, id string) (*snapshot.Snapshot, error) {
	var sn *snapshot.Snapshot
	if id != "" {
		var err error
		if sn, err = a.resolveSnapshot(ctx, repo, env, id); err != nil {
			return nil, err
		}
	} else {
		if at == "" {
			at = "latest"
		}
		inst, err := when.Parse(at, time.Now(), cfg.Location)
		if err != nil {
			return nil, &usageError{err}
		}
		sns, err := a.listSnapshots(ctx, repo, env)
		if err != nil {
			return nil, err
		}
		sn, err = when.Select(sns, func(s *snapshot.Snapshot) time.Time { return s.Time },
			func(s *snapshot.Snapshot) string { return s.ID().String() }, inst)
		if err != nil {
			if errors.Is(err, when.ErrNoSnapshots) {
				return nil, fmt.Errorf("%s has no snapshots (run mbackup backup %s first)", env, env)
			}
			return nil, fmt.Errorf("%s: %w", env, err)
		}
	}
	local := sn.Time.In(cfg.Location)
	msg := fmt.Sprintf("using snapshot %s of %s taken %s (%s ago)", sn.ID().Short(), env, local.Format("2006-01-02 15:04:05 MST"), when.FormatAge(time.Since(sn.Time)))
	if a.json {
		a.mu.Lock()
		fmt.Fprintln(a.stderr, msg)
		a.mu.Unlock()
	} else {
		a.printf("%s\n", msg)
	}
	return sn, nil
}

// confirm asks on the terminal; without one it refuses unless --yes.
func (a *app) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	if !a.stdinIsTerminal() {
		return usagef("refusing to restore without confirmation: stdin is not a terminal (pass --yes to confirm)")
	}
	a.mu.Lock()
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	a.mu.Unlock()
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return usagef("not confirmed; nothing was changed")
}

func (a *app) printReport(rep *restore.Report) {
	verb := "restored"
	if rep.DryRun {
		verb = "plan:"
	}
	if d := rep.Database; d != nil {
		switch {
		case rep.DryRun && d.KeepAs != "":
			a.printf("%s database: restore %s of dump into new database %s (%d job(s)), then rename %s to %s and %s to %s\n",
				verb, formatBytes(d.DumpBytes), d.New, d.Jobs, d.Target, d.KeepAs, d.New, d.Target)
		case rep.DryRun && d.New != "":
			a.printf("%s database: restore %s of dump into new database %s, then rename it to %s\n", verb, formatBytes(d.DumpBytes), d.New, d.Target)
		case d.New == "" && rep.DryRun:
			a.printf("%s database: write %s as plain SQL\n", verb, d.Target)
		case d.New == "":
			a.printf("wrote database dump (%s) as plain SQL to %s\n", formatBytes(d.DumpBytes), d.Target)
		case d.KeepAs != "":
			a.printf("%s database %s (%d tables verified); previous database kept as %s\n", verb, d.Target, rep.TablesVerified, d.KeepAs)
		default:
			a.printf("%s database %s (%d tables verified)\n", verb, d.Target, rep.TablesVerified)
		}
	}
	if p := rep.Files; p != nil {
		a.printf("%s moodledata: %d files (%s), write %d (%s), delete %d, unchanged %d, verified %d\n", verb,
			p.Files, formatBytes(p.Bytes), len(p.Write), formatBytes(p.WriteBytes), len(p.Delete), p.Unchanged, rep.FilesVerified)
		if rep.DryRun {
			for i, w := range p.Write {
				if i == 20 {
					a.printf("  ... and %d more to write\n", len(p.Write)-20)
					break
				}
				a.printf("  write  %s\n", w)
			}
			for i, d := range p.Delete {
				if i == 20 {
					a.printf("  ... and %d more to delete\n", len(p.Delete)-20)
					break
				}
				a.printf("  delete %s\n", d)
			}
		}
	}
	a.printf("%s to fetch from the repository; %s\n", formatBytes(rep.FetchBytes), rep.Duration.Round(10*time.Millisecond))
}

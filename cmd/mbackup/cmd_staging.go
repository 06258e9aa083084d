package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/restore"
	"github.com/mbackup/mbackup/restore/jelastic"
	"github.com/mbackup/mbackup/restore/staging"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

func (a *app) stagingCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "staging",
		Short: "Staging copies of production through Jelastic clones",
		Args:  nargs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("staging: name a subcommand (see mbackup staging --help)")
		},
	}
	cmd.AddCommand(a.stagingRefreshCommand())
	return cmd
}

type stagingFlags struct {
	at                    string
	reclone, dryRun, yes  bool
	jobs                  int
	waitTimeout, pollTime time.Duration
}

func (a *app) stagingRefreshCommand() *cobra.Command {
	var f stagingFlags
	cmd := &cobra.Command{
		Use:   "refresh ENV [--at WHEN] [--reclone] [--dry-run] [--yes]",
		Short: "(Re)create ENV's staging copy by a Jelastic clone and replay snapshot data into it, sanitized",
		Long: `Refresh the staging copy of ENV (its staging: block). It first prints the
snapshot it chose (default: the latest).

When the staging Jelastic environment does not exist (or with --reclone,
after deleting it), production's environment is cloned to it and the clone
awaited. Then staging's config.php is pointed at staging's database and
wwwroot with e-mail off (noemailever, or divertallemailsto when
divert_emails_to is set) and staging is put in maintenance mode until the end;
the snapshot is replayed
into staging's database and moodledata with the restore code; the database
is sanitized (scheduled tasks disabled except housekeeping, adhoc tasks,
sessions, web service tokens and integration credentials removed, payments
and OAuth 2 off, new siteidentifier); muc/config.php, production's SAML key
and the caches are removed; staging's app nodes are restarted. Every change
is reported.

Refused (exit 2) when staging's Jelastic environment, database, moodledata or
config.php is production's. Production is never written. A refresh that
fails half-way reports staging as broken and leaves climaintenance.html in
staging's moodledata saying so. Asks for confirmation unless --yes.`,
		Args: nargs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runStagingRefresh(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.at, "at", "", "replay the newest snapshot taken at or before WHEN (default latest)")
	fl.BoolVar(&f.reclone, "reclone", false, "delete the staging environment and clone it afresh")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVar(&f.yes, "yes", false, "do not ask for confirmation")
	fl.IntVar(&f.jobs, "jobs", 0, "parallel pg_restore jobs for large dumps (default: number of CPUs)")
	fl.DurationVar(&f.waitTimeout, "wait-timeout", 30*time.Minute, "how long to wait for a clone to run")
	fl.DurationVar(&f.pollTime, "poll-interval", 5*time.Second, "how often to ask the platform while waiting")
	return cmd
}

// jelasticClient connects to the configured platform. The token is read
// here and only handed to the client.
func (a *app) jelasticClient(cfg *config.Config) (*jelastic.Client, error) {
	tok, err := cfg.JelasticToken()
	if err != nil {
		return nil, err
	}
	if tok.IsZero() {
		return nil, usagef("the Jelastic token in %s is empty (check jelastic.token_env / token_file)", cfg.File)
	}
	return jelastic.New(cfg.Jelastic.URL, tok.Value(), jelastic.WithLogger(a.log)), nil
}

// productionSite is env as the staging package compares it. Production's
// password is not read: nothing connects to production's database.
func productionSite(env *config.Environment) staging.Site {
	return staging.Site{JelasticEnv: env.JelasticEnv, DB: postgres.DB{URL: env.Database.ConnString()},
		Moodledata: env.Moodledata, ConfigPHP: env.ConfigPHP}
}

func (a *app) runStagingRefresh(ctx context.Context, envName string, f stagingFlags) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	env, err := cfg.Env(envName)
	if err != nil {
		return err
	}
	s := env.Staging
	if s == nil {
		return usagef("%s has no staging block in %s: add staging: {jelastic_env, database, moodledata, config_php, wwwroot}", env.Name, cfg.File)
	}
	if env.JelasticEnv == "" {
		return usagef("%s has no jelastic_env in %s: staging is cloned from it", env.Name, cfg.File)
	}
	pw, err := s.DatabasePassword()
	if err != nil {
		return err
	}
	client, err := a.jelasticClient(cfg)
	if err != nil {
		return err
	}
	repo, _, err := a.repository(ctx)
	if err != nil {
		return err
	}
	sn, err := a.chooseSnapshot(ctx, repo, cfg, env.Name, f.at, "")
	if err != nil {
		return err
	}
	p := staging.Params{
		Env:        env.Name,
		Production: productionSite(env),
		Copy: staging.Site{JelasticEnv: s.JelasticEnv, DB: postgres.DB{URL: s.Database.ConnString(), Password: pw.Value()},
			Moodledata: s.Moodledata, ConfigPHP: s.ConfigPHP},
		Settings: staging.Settings{WWWRoot: s.WWWRoot, DivertEmailsTo: s.DivertEmailsTo},
		Exclude:  env.Exclude, Platform: client, Repo: repo, Snapshot: sn,
		Reclone: f.reclone, DryRun: f.dryRun, WaitTimeout: f.waitTimeout, PollInterval: f.pollTime, Log: a.log,
	}
	if !f.dryRun {
		what := "cloned from " + env.JelasticEnv + " if it does not exist"
		if f.reclone {
			what = "DELETED and cloned again from " + env.JelasticEnv
		}
		q := fmt.Sprintf("Refresh staging %s of %s from snapshot %s: the environment is %s; its database %s and moodledata %s are replaced and sanitized. Continue?",
			s.JelasticEnv, env.Name, sn.ID().Short(), what, s.Database.ConnString(), s.Moodledata)
		if err := a.confirm(f.yes, q); err != nil {
			return err
		}
	}
	return a.runCopy(ctx, p, f.jobs, env.PgRestore(), staging.Refresh, env.Name+"'s staging block", cfg.File)
}

// runCopy runs a refresh or side restore with a progress bar and prints
// its report, also when it failed. pgRestore is the source environment's
// pg_restore; dbOwner and configFile say where the copy's database
// password is configured.
func (a *app) runCopy(ctx context.Context, p staging.Params, jobs int, pgRestore string,
	do func(context.Context, staging.Params) (*staging.Report, error), dbOwner, configFile string) error {
	bar := a.newProgress("refreshing", -1, true)
	p.Restore = restore.Options{Jobs: jobs, Log: a.log, PgRestore: pgRestore, Progress: func(pr restore.Progress) {
		bar.describe(pr.Phase)
		bar.set(pr.BytesDone, pr.BytesTotal)
	}}
	rep, err := do(ctx, p)
	bar.finish()
	if staging.IsRefused(err) {
		return &usageError{err}
	}
	if rep != nil {
		if a.json {
			if jerr := a.printJSON(rep); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			a.printCopyReport(rep)
		}
	}
	return explainDBAuth(err, dbOwner, configFile)
}

func (a *app) printCopyReport(rep *staging.Report) {
	head := fmt.Sprintf("%s of %s (Jelastic %s) into %s", rep.Kind, rep.Env, rep.Production, rep.Copy)
	switch rep.Status {
	case staging.StatusPlanned:
		a.printf("plan: %s (nothing is changed):\n", head)
	default:
		a.printf("%s: %s in %s\n", head, rep.Status, rep.Duration.Round(10*time.Millisecond))
	}
	for _, s := range rep.Steps {
		mark := ""
		if s.Status == staging.StepFailed {
			mark = " FAILED"
		}
		if len(s.Changes) == 0 {
			a.printf("  [%s]%s\n", s.Name, mark)
		}
		for _, c := range s.Changes {
			a.printf("  [%s]%s %s\n", s.Name, mark, c)
		}
	}
	switch rep.Status {
	case staging.StatusOK:
		a.printf("%s is ready at %s (database %s, moodledata %s)\n", rep.Copy, rep.WWWRoot, rep.Database, rep.Moodledata)
	case staging.StatusBroken:
		marker := "no marker could be written"
		if rep.BrokenMarker != "" {
			marker = rep.BrokenMarker + " keeps it closed"
		}
		again := "Run the refresh again (with --reclone if needed)."
		if rep.Kind == staging.KindSideRestore {
			again = "The clone is kept for inspection; delete it before a new side restore under that name."
		}
		a.printf("%s is BROKEN (failed at %s): do not use it; %s. Production was not touched. %s\n",
			rep.Copy, rep.FailedStep, marker, again)
	}
}

// cloneFlags are restore's --clone NEW_ENV_NAME (a side restore) and the
// overrides of the clone's derived addresses.
type cloneFlags struct {
	name, database, moodledata, configPHP, wwwroot string
}

func (c *cloneFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&c.name, "clone", "", "side restore: clone ENV's Jelastic environment to this new environment and restore into the clone (production is not changed)")
	fl.StringVar(&c.database, "clone-database", "", "with --clone: the clone's database URL (default: ENV's with its Jelastic name replaced)")
	fl.StringVar(&c.moodledata, "clone-moodledata", "", "with --clone: the clone's moodledata folder (default: ENV's with its Jelastic name replaced)")
	fl.StringVar(&c.configPHP, "clone-config-php", "", "with --clone: the clone's config.php (default: ENV's with its Jelastic name replaced)")
	fl.StringVar(&c.wwwroot, "clone-wwwroot", "", "with --clone: the clone's URL (default: https://<the clone's platform domain>)")
}

func (c cloneFlags) set() bool {
	return c.name != "" || c.database != "" || c.moodledata != "" || c.configPHP != "" || c.wwwroot != ""
}

// runSideRestore is restore ENV --clone NEW_ENV_NAME.
func (a *app) runSideRestore(ctx context.Context, envName string, f restoreFlags) error {
	c := f.clone
	switch {
	case c.name == "":
		return usagef("--clone-database, --clone-moodledata, --clone-config-php and --clone-wwwroot need --clone NEW_ENV_NAME")
	case f.to != "" || f.targetDir != "":
		return usagef("give --clone, --to or --target-dir, not several")
	case f.dbOnly || f.filesOnly:
		return usagef("--clone restores the whole site: --db-only and --files-only do not apply")
	case f.at != "" && f.snapshotID != "":
		return usagef("give --at or --snapshot, not both")
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	env, err := cfg.Env(envName)
	if err != nil {
		return err
	}
	if env.JelasticEnv == "" {
		return usagef("%s has no jelastic_env in %s: a side restore clones it", env.Name, cfg.File)
	}
	for _, e := range cfg.Environments() {
		if strings.EqualFold(e.JelasticEnv, c.name) || (e.Staging != nil && strings.EqualFold(e.Staging.JelasticEnv, c.name)) {
			return usagef("--clone %s: that is the Jelastic environment of %s in %s; a side restore needs a new name", c.name, e.Name, cfg.File)
		}
	}
	// The clone's database server is a copy of production's, with its
	// roles: the clone's database is reached with production's password.
	pw, err := env.DatabasePassword()
	if err != nil {
		return err
	}
	prod := productionSite(env)
	prod.DB.Password = pw.Value()
	site, derr := staging.DeriveClone(prod, c.name)
	if derr != nil {
		if staging.IsRefused(derr) && (c.database == "" || c.moodledata == "") {
			return &usageError{fmt.Errorf("%w (or give --clone-database and --clone-moodledata)", derr)}
		}
		site = staging.Site{JelasticEnv: c.name}
	}
	if c.database != "" {
		u, err := url.Parse(c.database)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return usagef("--clone-database %s: want postgres://USER@HOST:PORT/DBNAME", postgres.Redact(c.database))
		}
		site.DB = postgres.DB{URL: c.database}
		if _, has := u.User.Password(); !has {
			site.DB.Password = pw.Value()
		}
	}
	for _, o := range []struct {
		flag, val string
		dst       *string
	}{{"--clone-moodledata", c.moodledata, &site.Moodledata}, {"--clone-config-php", c.configPHP, &site.ConfigPHP}} {
		if o.val == "" {
			continue
		}
		if !filepath.IsAbs(o.val) {
			return usagef("%s %s: give an absolute path", o.flag, o.val)
		}
		*o.dst = filepath.Clean(o.val)
	}
	client, err := a.jelasticClient(cfg)
	if err != nil {
		return err
	}
	repo, _, err := a.repository(ctx)
	if err != nil {
		return err
	}
	sn, err := a.chooseSnapshot(ctx, repo, cfg, env.Name, f.at, f.snapshotID)
	if err != nil {
		return err
	}
	p := staging.Params{
		Env: env.Name, Production: prod, Copy: site,
		Settings: staging.Settings{WWWRoot: c.wwwroot},
		Exclude:  env.Exclude, Platform: client, Repo: repo, Snapshot: sn, DryRun: f.dryRun, Log: a.log,
	}
	if !f.dryRun {
		q := fmt.Sprintf("Side restore of snapshot %s of %s: clone Jelastic environment %s to the new environment %s (%s may pause briefly), then replace the clone's database %s and moodledata %s with the snapshot, sanitized. Production's data is not changed. Continue?",
			sn.ID().Short(), env.Name, env.JelasticEnv, c.name, env.JelasticEnv, site.DB, site.Moodledata)
		if err := a.confirm(f.yes, q); err != nil {
			return err
		}
	}
	return a.runCopy(ctx, p, f.jobs, env.PgRestore(), staging.SideRestore, env.Name, cfg.File)
}

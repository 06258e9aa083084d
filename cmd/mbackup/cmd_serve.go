package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/cmd/internal/notify"
	"github.com/mbackup/mbackup/cmd/internal/service"
	"github.com/mbackup/mbackup/cmd/internal/state"
	"github.com/mbackup/mbackup/cmd/internal/status"
	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/checker"
	"github.com/mbackup/mbackup/engine/prune"
	"github.com/mbackup/mbackup/retention/forget"
	"github.com/mbackup/mbackup/snapshot"
)

type serveFlags struct {
	listen, logFormat string
	grace, spread     time.Duration
	margin            time.Duration
}

func (a *app) serveCommand() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR]",
		Short: "Run the scheduled fleet service",
		Long: `Run the fleet service: back up every environment on its schedule (in the
configured timezone), environments sharing a schedule spread over --spread;
at most concurrency backups at once, never one environment twice; failed
backups retried (retry: attempts, delay, doubling); a night missed while the
service was down caught up at start-up. After each backup the environment's
retention policy is applied. maintenance.prune and maintenance.check run on
their own schedules, and so do staging refreshes (staging.schedule, as
mbackup staging refresh ENV --yes). Every run is recorded in state_dir, where mbackup
status reads it. Failures and recoveries are notified once per change
(notify: webhook, email).

HTTP on --listen (default: listen in the configuration, 127.0.0.1:9187):
/healthz, /status (the JSON of mbackup status) and /metrics (Prometheus).

SIGHUP reloads the configuration (an invalid one is refused and logged; the
running one stays). SIGTERM or SIGINT stops starting jobs and waits up to
--grace for running ones; then they are cancelled, which commits nothing.
A second SIGTERM cancels them at once. Logs go to stderr, one line per job
start and end (--log-format text or json).`,
		Args: nargs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.serve(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "", "HTTP address for /healthz, /status and /metrics (default: listen in the configuration)")
	fl.StringVar(&f.logFormat, "log-format", "", "text or json (default: log_format in the configuration)")
	fl.DurationVar(&f.grace, "grace", 10*time.Minute, "on SIGTERM, how long running jobs may take to finish before they are cancelled")
	fl.DurationVar(&f.spread, "spread", service.DefaultSpread, "spread environments sharing a schedule over this window (0: start them together)")
	fl.DurationVar(&f.margin, "margin", status.DefaultMargin, "an environment is overdue this long after a missed activation (for /status and /metrics)")
	return cmd
}

// newServiceLogger builds the service's slog logger on w.
func (a *app) newServiceLogger(w io.Writer, format string) *slog.Logger {
	level := slog.LevelInfo
	if a.verbose {
		level = slog.LevelDebug
	}
	if a.quiet {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (a *app) serve(ctx context.Context, f serveFlags) error {
	if f.logFormat != "" && f.logFormat != "text" && f.logFormat != "json" {
		return usagef("--log-format %q: use text or json", f.logFormat)
	}
	if f.grace < 0 || f.spread < 0 || f.margin < 0 {
		return usagef("--grace, --spread and --margin must not be negative")
	}
	// Missing moodledata of one environment must not stop the others:
	// paths are checked per backup instead.
	path, err := config.Find(a.configPath)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path, config.SkipPathChecks())
	if err != nil {
		return err
	}
	a.cfg = cfg
	format := cfg.LogFormat
	if f.logFormat != "" {
		format = f.logFormat
	}
	log := a.newServiceLogger(a.stderr, format)
	a.log = log // the engine logs through it too
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	addr := cfg.Listen
	if f.listen != "" {
		addr = f.listen
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w (set --listen or listen: in %s)", addr, err, cfg.File)
	}
	defer ln.Close()
	store, err := state.Open(cfg.StateDir)
	if err != nil {
		return fmt.Errorf("%w (set state_dir in %s)", err, cfg.File)
	}
	notifier, err := notify.New(cfg)
	if err != nil {
		return err
	}
	repo, _, err := a.repository(ctx)
	if err != nil {
		return err
	}
	inv := service.NewRepoInventory(repo)
	var svc *service.Service
	current := func() *config.Config { return svc.Config() }
	spread := f.spread
	if spread == 0 {
		spread = -1 // none
	}
	svc, err = service.New(service.Options{
		Config: cfg, Inventory: inv, Store: store, Notifier: notifier, Logger: log,
		Spread: spread, Grace: f.grace, Margin: f.margin, Version: version,
		Jobs: service.Jobs{
			Backup:  a.serviceBackup(repo, log, cfg.File),
			Forget:  serviceForget(repo, inv, current),
			Prune:   servicePrune(repo, log, current),
			Check:   serviceCheck(repo),
			Staging: a.serviceStaging(repo, log, current),
		},
	})
	if err != nil {
		return err
	}

	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "config", cfg.File, "repository", repo.Backend().Location(),
		"state_dir", cfg.StateDir, "version", version)

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		svc.Run(runCtx)
	}()

	var failure error
	terms := 0
loop:
	for {
		select {
		case <-stopped:
			break loop
		case err := <-httpErr:
			if !errors.Is(err, http.ErrServerClosed) {
				failure = fmt.Errorf("serve: HTTP server on %s: %w", addr, err)
				log.Error("HTTP server failed; stopping", "err", err)
				stopRun()
			}
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				a.reload(svc, path, log)
				continue
			}
			// The command's context (main) ends on the first one too.
			terms++
			if terms == 1 {
				stopRun()
			} else {
				log.Warn("second signal: cancelling running jobs", "signal", sig.String())
				svc.Abort()
			}
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return failure
}

// reload handles SIGHUP: a new configuration that loads is used; one that
// does not is refused and the running one stays.
func (a *app) reload(svc *service.Service, path string, log *slog.Logger) {
	cfg, err := config.Load(path, config.SkipPathChecks())
	if err != nil {
		log.Error("configuration reload refused; keeping the running configuration", "file", path, "err", oneLine(err.Error()))
		return
	}
	n, err := notify.New(cfg)
	if err != nil {
		log.Error("configuration reload refused; keeping the running configuration", "file", path, "err", oneLine(err.Error()))
		return
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	old := svc.Config()
	for _, c := range []struct{ what, was, is string }{
		{"repository", old.Repository.URL.String(), cfg.Repository.URL.String()},
		{"state_dir", old.StateDir, cfg.StateDir},
		{"listen", old.Listen, cfg.Listen},
		{"log_format", old.LogFormat, cfg.LogFormat},
	} {
		if c.was != c.is {
			log.Warn("setting changed; it takes effect after a restart", "setting", c.what)
		}
	}
	svc.Reload(cfg, n)
}

// serviceBackup backs up one environment for the service.
func (a *app) serviceBackup(repo *engine.Repository, log *slog.Logger, configFile string) func(context.Context, *config.Environment) (service.BackupResult, error) {
	return func(ctx context.Context, e *config.Environment) (service.BackupResult, error) {
		if err := e.CheckPaths(); err != nil {
			return service.BackupResult{}, err
		}
		src, err := sourceOf(e)
		if err != nil {
			return service.BackupResult{}, err
		}
		r, err := snapshot.Backup(ctx, repo, src, snapshot.Options{
			Version: version,
			PgDump:  e.PgDump(),
			Warn:    func(msg string) { log.Warn("backup warning", "env", e.Name, "warning", msg) },
		})
		if err != nil {
			return service.BackupResult{}, explainDBAuth(err, e.Name, configFile)
		}
		m := r.Snapshot.Manifest
		var total int64
		if m.Database != nil {
			total += m.Database.DumpBytes
		}
		if m.Files != nil {
			total += m.Files.Bytes
		}
		return service.BackupResult{Snapshot: r.Snapshot.ID().String(), Time: r.Snapshot.Time, Bytes: total,
			AddedBytes: m.AddedBytes, Warnings: m.Warnings}, nil
	}
}

// serviceForget applies an environment's retention policy, as mbackup
// forget does.
func serviceForget(repo *engine.Repository, inv *service.RepoInventory, current func() *config.Config) func(context.Context, *config.Environment) (int, error) {
	return func(ctx context.Context, e *config.Environment) (int, error) {
		cfg := current()
		p, err := policyOf(cfg, e)
		if err != nil {
			return 0, err
		}
		if p.Empty() {
			return 0, nil // keep everything
		}
		all, err := inv.Snapshots(ctx)
		if err != nil {
			// Deciding on a partial list could remove a snapshot that
			// the unreadable ones would have made redundant, or keep too
			// many: both harmless, but say so and decide next time.
			return 0, fmt.Errorf("retention of %s skipped: %w", e.Name, err)
		}
		var sns []*snapshot.Snapshot
		for _, s := range all {
			if s.Env() == e.Name {
				sns = append(sns, s)
			}
		}
		pinned, err := repo.Pinned(ctx)
		if err != nil {
			return 0, err
		}
		plan := forget.Decide(e.Name, sns, p, cfg.Location, time.Now(), pinned)
		return forget.Apply(ctx, repo, plan)
	}
}

// servicePrune is the scheduled prune (maintenance.prune).
func servicePrune(repo *engine.Repository, log *slog.Logger, current func() *config.Config) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		st, err := prune.Run(ctx, repo, prune.Options{MaxUnused: current().Prune.MaxUnused, Log: log})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d pack(s) deleted, %s freed, %d repacked, %d mark(s) pending",
			st.DeletedPacks, formatBytes(st.FreedBytes), st.Repacked, st.PendingTombstones), nil
	}
}

// serviceStaging refreshes an environment's staging copy on its
// staging.schedule, as `mbackup staging refresh ENV --yes` does, with the
// service's current configuration and repository. Its report goes to
// stdout (the journal).
func (a *app) serviceStaging(repo *engine.Repository, log *slog.Logger, current func() *config.Config) func(context.Context, *config.Environment) (string, error) {
	return func(ctx context.Context, e *config.Environment) (string, error) {
		// A fresh app per run: the refresh reads the configuration
		// through it, and a reload must not change it under a running one.
		run := newApp(a.stdin, a.stdout, a.stderr)
		run.cfg, run.repo, run.log, run.quiet = current(), repo, log, a.quiet
		err := run.runStagingRefresh(ctx, e.Name, stagingFlags{yes: true, waitTimeout: 30 * time.Minute, pollTime: 5 * time.Second})
		if err != nil {
			return "", err
		}
		return "refreshed " + e.Staging.JelasticEnv, nil
	}
}

// serviceCheck is the scheduled check --read-data-subset (maintenance.check).
func serviceCheck(repo *engine.Repository) func(context.Context, float64) (string, error) {
	return func(ctx context.Context, subset float64) (string, error) {
		res, err := checker.Check(ctx, repo, checker.Options{Subset: &checker.Subset{Percent: subset}})
		if err != nil {
			return "", err
		}
		if !res.OK() {
			first := ""
			if len(res.Errors) > 0 {
				first = ": " + res.Errors[0]
			}
			return "", fmt.Errorf("check found damage: %d damaged snapshot(s), %d damaged pack(s), %d error(s)%s (run mbackup check)",
				len(res.DamagedSnapshots), len(res.DamagedPacks), len(res.Errors), first)
		}
		return fmt.Sprintf("%d snapshots, %d packs read (%s), no errors", res.Snapshots, res.PacksRead, formatBytes(res.BytesRead)), nil
	}
}

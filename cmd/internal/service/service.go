package service

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/cmd/internal/notify"
	"github.com/mbackup/mbackup/cmd/internal/state"
	"github.com/mbackup/mbackup/cmd/internal/status"
	"github.com/mbackup/mbackup/snapshot"
)

// Job classes: each has its own concurrency limit.
const (
	ClassBackup      = "backup"      // config.Concurrency at once
	ClassMaintenance = "maintenance" // prune and check, one at a time
	ClassStaging     = "staging"     // one at a time
)

// BackupResult is what a backup reports.
type BackupResult struct {
	Snapshot   string    // ID
	Time       time.Time // the snapshot's time
	Bytes      int64     // database dump plus moodledata, before deduplication
	AddedBytes int64     // stored after deduplication and compression
	Warnings   int
}

// Jobs is the work the service schedules. Backup is required; a nil
// Forget keeps every snapshot; a nil Prune, Check or Staging leaves that
// job unscheduled, with a warning when the configuration asks for it.
type Jobs struct {
	Backup func(ctx context.Context, env *config.Environment) (BackupResult, error)
	// Forget applies env's retention policy; it returns the number of
	// snapshots removed.
	Forget func(ctx context.Context, env *config.Environment) (removed int, err error)
	// Prune and Check return a one-line summary for the log.
	Prune   func(ctx context.Context) (summary string, err error)
	Check   func(ctx context.Context, subsetPercent float64) (summary string, err error)
	Staging func(ctx context.Context, env *config.Environment) (summary string, err error)
}

// Inventory reads what the repository holds.
type Inventory interface {
	// Snapshots returns every snapshot, oldest first. With an error it
	// may still return the snapshots that loaded.
	Snapshots(ctx context.Context) ([]*snapshot.Snapshot, error)
	// Size returns the bytes stored in the repository.
	Size(ctx context.Context) (int64, error)
}

// Options configure a Service.
type Options struct {
	Config    *config.Config
	Jobs      Jobs
	Inventory Inventory
	Store     *state.Store
	Notifier  *notify.Notifier // nil: no notifications
	Logger    *slog.Logger     // nil: discard
	Clock     Clock            // nil: the wall clock
	// Spread is the window over which environments sharing a schedule
	// are spread: 0 means DefaultSpread, a negative value none.
	Spread time.Duration
	// Grace is how long a shutdown waits for running jobs.
	Grace time.Duration
	// Margin is status.Input.Margin.
	Margin  time.Duration
	Version string
}

// Service is the scheduled fleet service.
type Service struct {
	jobs   Jobs
	inv    Inventory
	store  *state.Store
	log    *slog.Logger
	clock  Clock
	spread time.Duration
	margin time.Duration
	sched  *Scheduler
	m      *metrics

	mu       sync.Mutex
	cfg      *config.Config
	notifier *notify.Notifier
	records  map[string]state.Record
	snaps    []*snapshot.Snapshot
	repoSize int64     // -1: unknown
	listed   time.Time // when snaps and repoSize were refreshed

	refreshMu sync.Mutex // one inventory refresh at a time

	started  atomic.Bool
	stopping atomic.Bool
}

// New prepares a service; Run starts it.
func New(opts Options) (*Service, error) {
	if opts.Config == nil || opts.Store == nil || opts.Inventory == nil || opts.Jobs.Backup == nil {
		return nil, errors.New("service: Config, Store, Inventory and Jobs.Backup are required")
	}
	s := &Service{
		jobs: opts.Jobs, inv: opts.Inventory, store: opts.Store, log: opts.Logger, clock: opts.Clock,
		spread: opts.Spread, margin: opts.Margin,
		cfg: opts.Config, notifier: opts.Notifier, repoSize: -1,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = RealClock{}
	}
	if s.spread == 0 {
		s.spread = DefaultSpread
	}
	recs, err := s.store.All()
	if err != nil {
		s.log.Error("some run records are unreadable; their jobs start afresh", "err", err)
	}
	if recs == nil {
		recs = map[string]state.Record{}
	}
	s.records = recs
	s.sched = NewScheduler(s.clock, opts.Grace, s.log)
	s.m = newMetrics(s, opts.Version)
	return s, nil
}

// Run schedules jobs until ctx is cancelled, then shuts down as
// Scheduler.Run does. It returns once no job runs any more.
func (s *Service) Run(ctx context.Context) {
	s.refresh(ctx)
	cfg := s.config()
	s.sched.SetLimit(ClassBackup, cfg.Concurrency)
	s.sched.SetLimit(ClassMaintenance, 1)
	s.sched.SetLimit(ClassStaging, 1)
	s.m.prepare(cfg.EnvNames())
	jobs := s.jobList(cfg)
	s.sched.Set(jobs)
	s.log.Info("service started", "environments", len(cfg.EnvNames()), "jobs", len(jobs),
		"concurrency", cfg.Concurrency, "timezone", cfg.Location.String())
	s.started.Store(true)
	stop := context.AfterFunc(ctx, func() {
		s.stopping.Store(true)
		s.log.Info("stopping: no new jobs; running ones may finish", "grace", s.sched.grace)
	})
	defer stop()
	s.sched.Run(ctx)
	s.stopping.Store(true)
	s.log.Info("service stopped")
}

// Reload switches to a new configuration (and notifier; nil keeps the
// current one). Running jobs finish with the settings they started with.
func (s *Service) Reload(cfg *config.Config, n *notify.Notifier) {
	s.mu.Lock()
	s.cfg = cfg
	if n != nil {
		s.notifier = n
	}
	s.mu.Unlock()
	s.sched.SetLimit(ClassBackup, cfg.Concurrency)
	s.m.prepare(cfg.EnvNames())
	jobs := s.jobList(cfg)
	s.sched.Set(jobs)
	s.log.Info("configuration reloaded", "environments", len(cfg.EnvNames()), "jobs", len(jobs))
}

// Abort cancels the running jobs of a shutdown without waiting for the
// rest of the grace period.
func (s *Service) Abort() { s.sched.Abort() }

// Config returns the configuration in use.
func (s *Service) Config() *config.Config { return s.config() }

// Jobs returns the scheduler's view of every job.
func (s *Service) Jobs() []JobState { return s.sched.Jobs() }

// Status returns the fleet status from the service's view of the
// repository (refreshed after every job) and its records.
func (s *Service) Status() []status.Env {
	s.mu.Lock()
	in := status.Input{Config: s.cfg, Snapshots: s.snaps, Records: maps.Clone(s.records), Now: s.clock.Now(), Margin: s.margin}
	s.mu.Unlock()
	return status.Compute(in)
}

func (s *Service) config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// staleAfter is how old the inventory may be when /status or /metrics
// is asked: snapshots made or forgotten by hand show up within it.
const staleAfter = time.Minute

// refreshIfStale refreshes the inventory when it is older than
// staleAfter, within a short deadline so that a slow storage does not
// hold up a scrape.
func (s *Service) refreshIfStale(ctx context.Context) {
	s.mu.Lock()
	fresh := s.clock.Now().Sub(s.listed) < staleAfter
	s.mu.Unlock()
	if fresh {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s.refresh(ctx)
}

// refresh reloads the inventory: snapshots and repository size.
func (s *Service) refresh(ctx context.Context) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	now := s.clock.Now()
	sns, err := s.inv.Snapshots(ctx)
	if err != nil {
		s.log.Warn("listing snapshots", "err", err)
	}
	size, serr := s.inv.Size(ctx)
	if serr != nil {
		s.log.Warn("measuring the repository", "err", serr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sns != nil || err == nil {
		s.snaps = sns
	}
	if serr == nil {
		s.repoSize = size
	}
	if err == nil && serr == nil {
		s.listed = now
	}
}

// jobList builds the jobs of cfg.
func (s *Service) jobList(cfg *config.Config) []Job {
	now := s.clock.Now()
	envs := cfg.Environments()
	shared := map[string]int{}
	for _, e := range envs {
		if !e.Schedule.IsZero() {
			shared[e.Schedule.Spec]++
		}
	}
	var jobs []Job
	var noStaging []string
	for _, e := range envs {
		if !e.Schedule.IsZero() {
			var sched cron.Schedule = e.Schedule
			if shared[e.Schedule.Spec] > 1 && s.spread > 0 {
				sched = Spread(e.Schedule, e.Name, s.spread, now)
			}
			jobs = append(jobs, Job{
				Name: "backup " + e.Name, Class: ClassBackup, Schedule: sched,
				Attempts: cfg.Retry.Attempts, Delay: cfg.Retry.Delay,
				CatchUp: true, LastSuccess: s.lastSuccess(state.JobBackup, e.Name),
				Run: s.backupRun(e.Name),
			})
		}
		if st := e.Staging; st != nil && !st.Schedule.IsZero() {
			if s.jobs.Staging == nil {
				noStaging = append(noStaging, e.Name)
				continue
			}
			jobs = append(jobs, Job{
				Name: "staging " + e.Name, Class: ClassStaging, Schedule: st.Schedule,
				Attempts: cfg.Retry.Attempts, Delay: cfg.Retry.Delay,
				Run: s.stagingRun(e.Name),
			})
		}
	}
	if len(noStaging) > 0 {
		s.log.Warn("staging.schedule is set but this build cannot refresh staging from the service; not scheduled",
			"environments", strings.Join(noStaging, ","))
	}
	m := cfg.Maintenance
	if !m.Prune.IsZero() {
		if s.jobs.Prune == nil {
			s.log.Warn("maintenance.prune is set but this build cannot prune from the service; not scheduled (run mbackup prune from cron)")
		} else {
			jobs = append(jobs, Job{Name: "prune", Class: ClassMaintenance, Schedule: m.Prune, Attempts: 1,
				Run: s.maintenanceRun(state.JobPrune, func(ctx context.Context) (string, error) { return s.jobs.Prune(ctx) })})
		}
	}
	if !m.Check.IsZero() {
		if s.jobs.Check == nil {
			s.log.Warn("maintenance.check is set but this build cannot check from the service; not scheduled")
		} else {
			subset := m.CheckSubset
			jobs = append(jobs, Job{Name: "check", Class: ClassMaintenance, Schedule: m.Check, Attempts: 1,
				Run: s.maintenanceRun(state.JobCheck, func(ctx context.Context) (string, error) { return s.jobs.Check(ctx, subset) })})
		}
	}
	return jobs
}

// lastSuccess is the newer of the record's last success and, for
// backups, the environment's newest snapshot.
func (s *Service) lastSuccess(job, env string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.records[state.Key(job, env)].LastSuccess
	if job == state.JobBackup {
		for _, sn := range s.snaps {
			if sn.Env() == env && sn.Time.After(last) {
				last = sn.Time
			}
		}
	}
	return last
}

// outcome is what a successful attempt reports for its record and log.
type outcome struct {
	at       time.Time // success time to record (a snapshot's time); zero: the end
	snapshot string
	bytes    int64
	added    int64
	attrs    []any // more for the log line
}

func (s *Service) backupRun(name string) func(context.Context, Attempt) error {
	return func(ctx context.Context, a Attempt) error {
		return s.runJob(ctx, state.JobBackup, name, a, func(ctx context.Context) (outcome, error) {
			env, err := s.config().Env(name)
			if err != nil {
				return outcome{}, err // removed by a reload meanwhile
			}
			res, err := s.jobs.Backup(ctx, env)
			if err != nil {
				return outcome{}, err
			}
			out := outcome{at: res.Time, snapshot: res.Snapshot, bytes: res.Bytes, added: res.AddedBytes}
			if res.Warnings > 0 {
				out.attrs = append(out.attrs, "warnings", res.Warnings)
			}
			if s.jobs.Forget != nil {
				// The snapshot is committed: a retention failure is logged,
				// not a failed backup, and the next backup applies it again.
				removed, err := s.jobs.Forget(ctx, env)
				if err != nil {
					s.log.Error("retention failed", "env", name, "err", oneLine(err))
				}
				out.attrs = append(out.attrs, "forgotten", removed)
			}
			s.refresh(ctx)
			return out, nil
		})
	}
}

func (s *Service) stagingRun(name string) func(context.Context, Attempt) error {
	return func(ctx context.Context, a Attempt) error {
		return s.runJob(ctx, state.JobStaging, name, a, func(ctx context.Context) (outcome, error) {
			env, err := s.config().Env(name)
			if err != nil {
				return outcome{}, err
			}
			summary, err := s.jobs.Staging(ctx, env)
			return outcome{attrs: []any{"summary", summary}}, err
		})
	}
}

func (s *Service) maintenanceRun(job string, work func(context.Context) (string, error)) func(context.Context, Attempt) error {
	return func(ctx context.Context, a Attempt) error {
		return s.runJob(ctx, job, "", a, func(ctx context.Context) (outcome, error) {
			summary, err := work(ctx)
			if err == nil && job == state.JobPrune {
				s.refresh(ctx)
			}
			return outcome{attrs: []any{"summary", summary}}, err
		})
	}
}

// runJob runs one attempt of a job with its record, log lines, metrics
// and notifications.
func (s *Service) runJob(ctx context.Context, job, env string, a Attempt, work func(context.Context) (outcome, error)) error {
	start := s.clock.Now()
	base := []any{"job", job}
	if env != "" {
		base = append(base, "env", env)
	}
	s.update(job, env, func(r *state.Record) {
		r.LastStart, r.Result, r.Attempt = start, state.Running, a.N
	})
	s.log.Info("job start", append(base, "attempt", a.N, "of", a.Of)...)
	s.m.setRunning(job, env, true)
	out, err := work(ctx)
	s.m.setRunning(job, env, false)
	end := s.clock.Now()
	dur := end.Sub(start)

	if err != nil && ctx.Err() != nil {
		// Not a failure: the error of an earlier failed attempt, if any,
		// stays the one to show.
		s.update(job, env, func(r *state.Record) { r.LastEnd, r.Result = end, state.Interrupted })
		s.log.Warn("job end", append(base, "result", state.Interrupted, "attempt", a.N, "duration_seconds", dur.Seconds())...)
		return err
	}
	if err != nil {
		msg := oneLine(err)
		rec := s.update(job, env, func(r *state.Record) {
			r.LastEnd, r.Result, r.Error = end, state.Failed, msg
			r.ConsecutiveFailures++
		})
		s.m.failed(job, env)
		s.log.Error("job end", append(base, "result", state.Failed, "attempt", a.N, "of", a.Of,
			"duration_seconds", dur.Seconds(), "err", msg)...)
		if a.Last() && !rec.Alerting {
			s.announce(ctx, notify.Event{Kind: notify.Failure, Job: job, Env: env, Time: end, Error: msg,
				Failures: rec.ConsecutiveFailures, LastSuccess: s.lastSuccess(job, env)})
		}
		return err
	}

	at := out.at
	if at.IsZero() {
		at = end
	}
	var failures int
	rec := s.update(job, env, func(r *state.Record) {
		failures = r.ConsecutiveFailures
		r.LastEnd, r.Result, r.Error = end, state.OK, ""
		r.LastSuccess, r.LastSnapshot = at, out.snapshot
		r.LastDuration, r.LastAddedBytes = dur.Seconds(), out.added
		r.ConsecutiveFailures = 0
	})
	attrs := append(base, "result", state.OK)
	if out.snapshot != "" {
		attrs = append(attrs, "snapshot", out.snapshot, "bytes", out.bytes, "added_bytes", out.added)
	}
	attrs = append(attrs, "duration_seconds", dur.Seconds())
	s.log.Info("job end", append(attrs, out.attrs...)...)
	if rec.Alerting {
		s.announce(ctx, notify.Event{Kind: notify.Recovery, Job: job, Env: env, Time: end,
			Failures: failures, LastSuccess: at, Snapshot: out.snapshot})
	}
	return nil
}

// announce sends a state change and records that it was announced: a
// failure once some channel delivered it (or none is enabled for it), so
// an undelivered failure is tried again after the next failed run; a
// recovery in any case, since the failure is over.
func (s *Service) announce(ctx context.Context, e notify.Event) {
	s.mu.Lock()
	n := s.notifier
	s.mu.Unlock()
	delivered, err := n.Notify(context.WithoutCancel(ctx), e)
	if err != nil {
		s.log.Error("notification failed", "event", e.Kind, "job", e.Job, "env", e.Env, "err", oneLine(err))
	} else if delivered > 0 {
		s.log.Info("notification sent", "event", e.Kind, "job", e.Job, "env", e.Env, "channels", delivered)
	}
	alerting := e.Kind == notify.Failure
	if alerting && delivered == 0 && n.Enabled(notify.Failure) {
		return
	}
	s.update(e.Job, e.Env, func(r *state.Record) { r.Alerting = alerting })
}

// update changes a record on disk and in memory. A record that cannot be
// written is logged: the backup itself matters more than its record.
func (s *Service) update(job, env string, fn func(*state.Record)) state.Record {
	rec, err := s.store.Update(job, env, fn)
	if err != nil {
		s.log.Error("writing run record", "job", job, "env", env, "err", err)
	}
	s.mu.Lock()
	s.records[state.Key(job, env)] = rec
	s.mu.Unlock()
	return rec
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " / ")), " ")
}

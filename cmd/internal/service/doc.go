// Package service is `mbackup serve`: the long-running fleet service that
// backs up every environment on its schedule, applies retention after each
// backup, runs prune and check on their own schedules, records every run
// durably (package state), notifies operators of failures and recoveries
// (package notify), and serves /healthz, /status and Prometheus /metrics.
//
// # Scheduling
//
// Schedules are robfig/cron schedules parsed by config.CronParser in the
// configured timezone (or CRON_TZ). The loop is the Scheduler's own rather
// than cron.Cron's so that tests can inject a Clock. Environments that
// share a schedule spec are spread over a window (default 30 min, capped
// at the schedule's period) by a stable offset derived from the
// environment's name. Backups run at most config.Concurrency at once;
// maintenance jobs (prune, check) one at a time in their own class; a job
// never runs twice at once, and activations that pass while it runs are
// not queued up. A failed attempt is retried config.Retry.Attempts times
// in all, the pauses doubling from config.Retry.Delay (Backoff).
//
// At start-up (and for environments added by a reload) a backup whose
// last success is older than the schedule's activation after it — a
// night missed while the service was down — runs at once, as does one
// that never succeeded.
//
// # Runs, records and notifications
//
// Every attempt is recorded in the state folder before it starts and when
// it ends. A cancelled attempt (the shutdown grace period ran out) is
// "interrupted", not a failure: snapshot.Backup commits nothing when its
// context is cancelled, and the next start catches up. When the last
// attempt of a run fails and the job was not already failing, one failure
// notification goes out; the first success after that sends one recovery
// notification. Whether a failure was announced is part of the durable
// record, so restarts neither repeat nor lose a notification.
//
// # What the service runs
//
// The work itself is injected (Jobs), so that the package knows nothing
// of pg_dump and tests can use fakes; cmd/mbackup wires the real
// snapshot, forget, check, prune and staging refresh functions. A nil
// function leaves its job unscheduled, with a warning when the
// configuration asks for it.
package service

// Package status computes the health of every configured environment from
// what is in the repository (its snapshots) and the run records of the
// service (package state): the last success and its age, whether the
// environment is overdue, whether its last run failed, and how many
// snapshots it has. `mbackup status`, the service's /status endpoint and
// `mbackup munin` all show this one computation.
//
// # Overdue
//
// An environment is overdue when the activation of its schedule that
// follows its last success has passed by more than a margin (default
// 2 h, DefaultMargin) without a newer success. For a daily schedule that is
// the period plus the margin, 26 h; for schedules with gaps (weekdays only)
// the gap does not count as overdue. A scheduled environment that was
// never backed up is overdue; one without a schedule never is.
//
// The margin must exceed the service's spreading window (default 30 min):
// the service starts each environment up to that much after its schedule.
package status

package status

import (
	"cmp"
	"slices"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/cmd/internal/state"
	"github.com/mbackup/mbackup/snapshot"
)

// DefaultMargin is how long after a due activation a missing success
// makes an environment overdue.
const DefaultMargin = 2 * time.Hour

// Env is the health of one environment: one element of `status --json`.
// Times are RFC 3339 in the configured timezone; pointers are null when
// there is no such value.
type Env struct {
	Env         string  `json:"env"`
	LastSuccess *string `json:"last_success"`
	AgeSeconds  *int64  `json:"age_seconds"`
	Overdue     bool    `json:"overdue"`
	LastError   *string `json:"last_error"`
	Snapshots   int     `json:"snapshots"`

	// Failed is true when the last run failed, or a retry of it is under
	// way (LastError says why).
	Failed bool `json:"failed"`
	// Schedule is the cron spec; "" when the environment is not scheduled.
	Schedule string `json:"schedule"`
	// DueBy is when the environment becomes overdue (null: unscheduled,
	// or never backed up).
	DueBy *string `json:"due_by"`
	// LastRun and LastResult describe the service's last run (null when
	// the service never ran it): ok, failed, running or interrupted.
	LastRun             *string `json:"last_run"`
	LastResult          *string `json:"last_result"`
	ConsecutiveFailures int     `json:"consecutive_failures"`
	// LastSnapshot and its sizes describe the newest snapshot.
	LastSnapshot *string `json:"last_snapshot"`
	AddedBytes   int64   `json:"last_added_bytes"`
	SizeBytes    int64   `json:"last_size_bytes"`

	// For the table and Munin, not serialised.
	LastSuccessTime time.Time     `json:"-"`
	Age             time.Duration `json:"-"`
	Period          time.Duration `json:"-"` // of the schedule; 0 when unscheduled
}

// Problem reports whether the environment needs attention: overdue or
// failed last time.
func (e Env) Problem() bool { return e.Overdue || e.Failed }

// Input is what Compute needs.
type Input struct {
	Config    *config.Config
	Snapshots []*snapshot.Snapshot // of every environment, any order
	Records   map[string]state.Record
	Now       time.Time
	Margin    time.Duration // 0 means DefaultMargin
}

// Compute returns the status of every configured environment, sorted by
// name. Snapshots and records of environments no longer configured are
// ignored.
func Compute(in Input) []Env {
	margin := in.Margin
	if margin <= 0 {
		margin = DefaultMargin
	}
	loc := in.Config.Location
	stamp := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := t.In(loc).Format(time.RFC3339)
		return &s
	}
	byEnv := map[string][]*snapshot.Snapshot{}
	for _, s := range in.Snapshots {
		byEnv[s.Env()] = append(byEnv[s.Env()], s)
	}
	var out []Env
	for _, e := range in.Config.Environments() {
		sns := byEnv[e.Name]
		slices.SortFunc(sns, func(a, b *snapshot.Snapshot) int {
			return cmp.Or(a.Time.Compare(b.Time), a.ID().Compare(b.ID()))
		})
		rec := in.Records[state.Key(state.JobBackup, e.Name)]
		st := Env{Env: e.Name, Snapshots: len(sns), Schedule: e.Schedule.Spec, ConsecutiveFailures: rec.ConsecutiveFailures}
		if e.Schedule.IsZero() {
			st.Schedule = ""
		}

		// The last success is the newest snapshot, or the record's when
		// retention removed that snapshot (a tag-only policy can).
		last := rec.LastSuccess
		var finished time.Time // when the newest snapshot was committed
		if n := len(sns); n > 0 {
			newest := sns[n-1]
			if newest.Time.After(last) {
				last = newest.Time
			}
			id := newest.ID().String()
			st.LastSnapshot = &id
			st.AddedBytes = newest.Manifest.AddedBytes
			st.SizeBytes = snapshotSize(newest)
			finished = newest.Manifest.Finished
			if finished.IsZero() {
				finished = newest.Time
			}
		}
		if !last.IsZero() {
			st.LastSuccessTime = last
			st.LastSuccess = stamp(last)
			st.Age = in.Now.Sub(last)
			age := int64(st.Age / time.Second)
			st.AgeSeconds = &age
		}

		if rec.Result != "" {
			st.LastRun = stamp(rec.LastStart)
			r := rec.Result
			st.LastResult = &r
		}
		// Failing: the last run failed, or failed attempts were made since
		// the last success (a retry is running or was interrupted). Any
		// later snapshot cures it, also one a manual `mbackup backup` made.
		if (rec.Failed() || rec.ConsecutiveFailures > 0) && !finished.After(rec.LastEnd) {
			st.Failed = true
			msg := rec.Error
			if msg == "" {
				msg = "failed"
			}
			st.LastError = &msg
		}

		if !e.Schedule.IsZero() {
			st.Period = Period(e.Schedule, in.Now)
			if last.IsZero() {
				st.Overdue = true
			} else if next := e.Schedule.Next(last); !next.IsZero() {
				due := next.Add(margin)
				st.DueBy = stamp(due)
				st.Overdue = in.Now.After(due)
			}
		}
		out = append(out, st)
	}
	return out
}

func snapshotSize(s *snapshot.Snapshot) int64 {
	var n int64
	if d := s.Manifest.Database; d != nil {
		n += d.DumpBytes
	}
	if f := s.Manifest.Files; f != nil {
		n += f.Bytes
	}
	if s.Manifest.ConfigPHP != nil {
		n += *s.Manifest.ConfigPHP
	}
	return n
}

// Period returns the schedule's period around t: the activation after the
// next minus the next. 0 when the schedule does not fire twice.
func Period(s cron.Schedule, t time.Time) time.Duration {
	next := s.Next(t)
	if next.IsZero() {
		return 0
	}
	after := s.Next(next)
	if after.IsZero() {
		return 0
	}
	return after.Sub(next)
}

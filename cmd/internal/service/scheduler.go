package service

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Job is one schedulable unit of work.
type Job struct {
	// Name identifies the job across reloads, e.g. "backup client-x".
	Name string
	// Class groups jobs that share a concurrency limit (SetLimit);
	// classes without a limit run one job at a time.
	Class string
	// Schedule says when the job is due (required). A cron.Schedule
	// from robfig/cron: config.Schedule, or one Spread.
	Schedule cron.Schedule
	// Attempts is how many times a failing run is tried (≥ 1), Delay the
	// pause before the second attempt (then doubled, see Backoff).
	Attempts int
	Delay    time.Duration
	// CatchUp runs the job as soon as it is added when the activation
	// after LastSuccess has already passed (a run missed while the
	// service was down), or when it never succeeded.
	CatchUp     bool
	LastSuccess time.Time
	// Run does the work. ctx is cancelled only when a shutdown's grace
	// period is over.
	Run func(ctx context.Context, a Attempt) error
}

// Attempt numbers the tries of one run.
type Attempt struct {
	N, Of int // 1 ≤ N ≤ Of
}

// Last reports whether no retry follows a failure of this attempt.
func (a Attempt) Last() bool { return a.N >= a.Of }

// JobState is what the scheduler knows about a job.
type JobState struct {
	Name    string
	Running bool
	Next    time.Time // next start (a retry, or the schedule's); zero: never
	Attempt int       // of the next or running start
}

// Scheduler starts jobs when they are due, at most Limit of a class at
// once, never one job twice at once, retrying failures with backoff. It
// uses robfig/cron schedules but its own loop, so that the clock can be
// injected.
//
// Activations that pass while a job runs or waits for a retry are not
// queued up: the job's next run is the schedule's first activation after
// the run ended. A job due while its class is full starts when a slot
// frees, earliest due first.
type Scheduler struct {
	clock Clock
	log   *slog.Logger
	grace time.Duration

	mu       sync.Mutex
	entries  map[string]*entry
	limits   map[string]int
	running  map[string]int // per class
	stopping bool

	wake      chan struct{}
	done      chan *entry
	abort     chan struct{}
	abortOnce sync.Once

	// testHookIdle, when set, is called by the loop each time it is
	// about to wait, with the time it will wake at the latest and the
	// number of running jobs.
	testHookIdle func(next time.Time, running int)
}

type entry struct {
	job     Job
	next    time.Time
	attempt int
	running bool
	removed bool
	err     error // of the finished attempt, handed from goroutine to loop
}

// maxSleep bounds each wait, so a wall clock that jumps (suspend, NTP
// step) is noticed within a minute.
const maxSleep = time.Minute

// NewScheduler returns a scheduler without jobs. grace is how long a
// shutdown waits for running jobs before cancelling them.
func NewScheduler(clock Clock, grace time.Duration, log *slog.Logger) *Scheduler {
	if clock == nil {
		clock = RealClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		clock: clock, log: log, grace: grace,
		entries: map[string]*entry{}, limits: map[string]int{}, running: map[string]int{},
		wake: make(chan struct{}, 1), done: make(chan *entry), abort: make(chan struct{}),
	}
}

// SetLimit sets how many jobs of class run at once (n < 1 means 1).
func (s *Scheduler) SetLimit(class string, n int) {
	s.mu.Lock()
	s.limits[class] = max(n, 1)
	s.mu.Unlock()
	s.poke()
}

// Set replaces the job list, e.g. after a configuration reload. A job
// that keeps its name keeps its state (running, retry pending, queued);
// its next regular start follows the new schedule. New jobs may catch up
// (Job.CatchUp). A removed job that is running finishes first.
func (s *Scheduler) Set(jobs []Job) {
	s.mu.Lock()
	now := s.clock.Now()
	seen := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		j.Attempts = max(j.Attempts, 1)
		seen[j.Name] = true
		if e, ok := s.entries[j.Name]; ok {
			e.job, e.removed = j, false
			if !e.running && e.attempt <= 1 && e.next.After(now) {
				e.next = j.Schedule.Next(now)
			}
			continue
		}
		e := &entry{job: j, attempt: 1, next: j.Schedule.Next(now)}
		if j.CatchUp && (j.LastSuccess.IsZero() || !j.Schedule.Next(j.LastSuccess).After(now)) {
			e.next = now
		}
		s.entries[j.Name] = e
	}
	for name, e := range s.entries {
		if seen[name] {
			continue
		}
		if e.running {
			e.removed = true
		} else {
			delete(s.entries, name)
		}
	}
	s.mu.Unlock()
	s.poke()
}

// Jobs returns the state of every job, by name.
func (s *Scheduler) Jobs() []JobState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JobState, 0, len(s.entries))
	for name, e := range s.entries {
		if e.removed {
			continue
		}
		out = append(out, JobState{Name: name, Running: e.running, Next: e.next, Attempt: e.attempt})
	}
	slices.SortFunc(out, func(a, b JobState) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Abort ends a shutdown's grace period at once: running jobs are
// cancelled (an operator's second SIGTERM). Before a shutdown it only
// shortens the grace period of the coming one to nothing.
func (s *Scheduler) Abort() { s.abortOnce.Do(func() { close(s.abort) }) }

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run starts due jobs until ctx is cancelled, then stops starting jobs,
// waits up to the grace period for the running ones, cancels those still
// running and waits for them to return.
func (s *Scheduler) Run(ctx context.Context) {
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	for ctx.Err() == nil {
		for _, e := range s.startDue(s.clock.Now()) {
			go s.runAttempt(jobCtx, e)
		}
		next, running := s.nextWake(s.clock.Now())
		if s.testHookIdle != nil {
			s.testHookIdle(next, running)
		}
		timer, stop := s.clock.TimerAt(next)
		select {
		case <-ctx.Done():
		case e := <-s.done:
			s.finish(e, s.clock.Now())
		case <-timer:
		case <-s.wake:
		}
		stop()
	}
	s.drain(cancelJobs)
}

func (s *Scheduler) runAttempt(ctx context.Context, e *entry) {
	s.mu.Lock()
	job, a := e.job, Attempt{N: e.attempt, Of: e.job.Attempts}
	s.mu.Unlock()
	err := s.call(ctx, job, a)
	s.mu.Lock()
	e.err = err
	s.mu.Unlock()
	s.done <- e
}

// call runs one attempt; a panic (a bug in one environment's job) fails
// that attempt instead of the whole fleet's service.
func (s *Scheduler) call(ctx context.Context, job Job, a Attempt) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("job panicked", "job", job.Name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("%s: internal error: %v", job.Name, r)
		}
	}()
	return job.Run(ctx, a)
}

// startDue marks the jobs that are due and fit their class's limit as
// running and returns them, earliest due first.
func (s *Scheduler) startDue(now time.Time) []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil
	}
	var due []*entry
	for _, e := range s.entries {
		if !e.running && !e.removed && !e.next.IsZero() && !e.next.After(now) {
			due = append(due, e)
		}
	}
	slices.SortFunc(due, func(a, b *entry) int {
		return cmp.Or(a.next.Compare(b.next), cmp.Compare(a.job.Name, b.job.Name))
	})
	var start []*entry
	for _, e := range due {
		c := e.job.Class
		if s.running[c] >= max(s.limits[c], 1) {
			continue
		}
		s.running[c]++
		e.running = true
		start = append(start, e)
	}
	return start
}

// nextWake returns when the loop must look again: the earliest start
// that is not yet due, at most maxSleep ahead. Due jobs waiting for a
// slot are woken by the finishing job instead. It also returns the
// number of running jobs.
func (s *Scheduler) nextWake(now time.Time) (wake time.Time, running int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wake = now.Add(maxSleep)
	for _, e := range s.entries {
		if e.running {
			running++
			continue
		}
		if e.next.After(now) && e.next.Before(wake) {
			wake = e.next
		}
	}
	return wake, running
}

// finish records the end of an attempt and schedules the job's next
// start: a retry after Backoff, or the schedule's next activation.
func (s *Scheduler) finish(e *entry, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.running = false
	s.running[e.job.Class]--
	if e.removed {
		delete(s.entries, e.job.Name)
		return
	}
	if e.err != nil && e.attempt < e.job.Attempts && !s.stopping {
		e.attempt++
		e.next = now.Add(Backoff(e.job.Delay, e.attempt))
		s.log.Debug("retry scheduled", "job", e.job.Name, "attempt", e.attempt, "at", e.next)
		return
	}
	e.attempt = 1
	e.next = e.job.Schedule.Next(now)
}

// drain waits for running jobs, cancelling them when the grace period
// is over.
func (s *Scheduler) drain(cancelJobs context.CancelFunc) {
	s.mu.Lock()
	s.stopping = true
	n := 0
	for _, c := range s.running {
		n += c
	}
	s.mu.Unlock()
	if n == 0 {
		return
	}
	s.log.Info("shutting down: waiting for running jobs", "jobs", n, "grace", s.grace)
	grace, stop := s.clock.TimerAt(s.clock.Now().Add(s.grace))
	defer stop()
	abort := s.abort
	for n > 0 {
		select {
		case e := <-s.done:
			s.finish(e, s.clock.Now())
			n--
		case <-grace:
			s.log.Warn("grace period over: cancelling running jobs; they commit nothing", "jobs", n)
			cancelJobs()
			grace = nil
		case <-abort:
			s.log.Warn("shutdown forced: cancelling running jobs; they commit nothing", "jobs", n)
			cancelJobs()
			grace, abort = nil, nil
		}
	}
}

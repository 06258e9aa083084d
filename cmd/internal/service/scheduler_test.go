package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/mbackup/mbackup/cmd/internal/config"
)

var zurich = mustLoc("Europe/Zurich")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

func sched(t *testing.T, spec string) config.Schedule {
	t.Helper()
	s, err := config.ParseSchedule(spec, zurich)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, zurich)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func noop(context.Context, Attempt) error { return nil }

func TestOffset(t *testing.T) {
	window := 30 * time.Minute
	seen := map[time.Duration]bool{}
	lo, hi := window, time.Duration(0)
	for i := 1; i <= 50; i++ {
		name := fmt.Sprintf("client-%02d", i)
		off := Offset(name, window, 24*time.Hour)
		if off != Offset(name, window, 24*time.Hour) {
			t.Fatalf("Offset(%s) is not stable", name)
		}
		if off < 0 || off >= window || off%time.Second != 0 {
			t.Fatalf("Offset(%s) = %v: want whole seconds in [0, %v)", name, off, window)
		}
		seen[off] = true
		lo, hi = min(lo, off), max(hi, off)
	}
	// 50 sites must not start together: distinct offsets spanning most
	// of the window.
	if len(seen) < 45 || hi-lo < 20*time.Minute {
		t.Errorf("50 environments got %d distinct offsets spanning %v; want them spread over the window", len(seen), hi-lo)
	}
	for _, tc := range []struct {
		window, period, limit time.Duration
	}{
		{30 * time.Minute, 2 * time.Second, 2 * time.Second}, // @every 2s stays every 2 s
		{30 * time.Minute, 0, 30 * time.Minute},
		{0, time.Hour, 0},
		{500 * time.Millisecond, time.Hour, 0},
	} {
		for i := range 20 {
			off := Offset(fmt.Sprint("env-", i), tc.window, tc.period)
			if off < 0 || (tc.limit == 0 && off != 0) || (tc.limit > 0 && off >= tc.limit) {
				t.Errorf("Offset(window %v, period %v) = %v; want within [0, %v)", tc.window, tc.period, off, tc.limit)
			}
		}
	}
}

func TestSpread(t *testing.T) {
	daily := sched(t, "0 2 * * *")
	now := at(t, "2026-11-27 12:00:00")
	s := Spread(daily, "client-x", 30*time.Minute, now)
	off := Offset("client-x", 30*time.Minute, 24*time.Hour)
	if off == 0 {
		t.Fatal("test needs a name with a non-zero offset")
	}
	first := s.Next(now)
	if want := at(t, "2026-11-28 02:00:00").Add(off); !first.Equal(want) {
		t.Fatalf("first activation %v, want %v", first, want)
	}
	// The offset is kept night after night, also across the DST change
	// (2027-03-28 in Zurich).
	tm := first
	for range 150 {
		next := s.Next(tm)
		local := next.In(zurich)
		if h, m := local.Hour(), local.Minute(); h != 2 || time.Duration(m)*time.Minute != off.Truncate(time.Minute) {
			t.Fatalf("activation at %v: want 02:%02d", local, int(off.Minutes()))
		}
		if next.Sub(tm) < 23*time.Hour {
			t.Fatalf("activations %v and %v too close", tm, next)
		}
		tm = next
	}
	// A zero window leaves the schedule alone.
	if got := Spread(daily, "client-x", 0, now); got.Next(now) != daily.Next(now) {
		t.Errorf("zero window shifted the schedule")
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		delay   time.Duration
		attempt int
		want    time.Duration
	}{
		{5 * time.Minute, 1, 5 * time.Minute},
		{5 * time.Minute, 2, 5 * time.Minute},
		{5 * time.Minute, 3, 10 * time.Minute},
		{5 * time.Minute, 4, 20 * time.Minute},
		{5 * time.Minute, 10, time.Hour},
		{2 * time.Hour, 5, 2 * time.Hour},
		{0, 3, 0},
	} {
		if got := Backoff(tc.delay, tc.attempt); got != tc.want {
			t.Errorf("Backoff(%v, %d) = %v, want %v", tc.delay, tc.attempt, got, tc.want)
		}
	}
}

// names returns the job names of entries.
func names(es []*entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.job.Name
	}
	return out
}

func TestConcurrencyBound(t *testing.T) {
	now := at(t, "2026-11-27 01:00:00")
	s := NewScheduler(newFakeClock(now), 0, nil)
	s.SetLimit(ClassBackup, 2)
	daily := sched(t, "0 2 * * *")
	var jobs []Job
	for _, n := range []string{"e", "d", "c", "b", "a"} {
		jobs = append(jobs, Job{Name: n, Class: ClassBackup, Schedule: daily, Run: noop})
	}
	jobs = append(jobs, Job{Name: "check", Class: ClassMaintenance, Schedule: daily, Run: noop})
	s.Set(jobs)

	if got := s.startDue(now); len(got) != 0 {
		t.Fatalf("started %v before 02:00", names(got))
	}
	two := at(t, "2026-11-27 02:00:00")
	got := s.startDue(two)
	// Two backups (earliest due, then by name) and the maintenance job,
	// which has its own class.
	if fmt.Sprint(names(got)) != "[a b check]" {
		t.Fatalf("started %v, want [a b check]", names(got))
	}
	if more := s.startDue(two.Add(time.Minute)); len(more) != 0 {
		t.Fatalf("started %v with both slots taken", names(more))
	}
	byName := map[string]*entry{}
	for _, e := range got {
		byName[e.job.Name] = e
	}
	s.finish(byName["a"], two.Add(10*time.Minute))
	if got := s.startDue(two.Add(10 * time.Minute)); fmt.Sprint(names(got)) != "[c]" {
		t.Fatalf("after a finished: started %v, want [c]", names(got))
	}
	if next, running := s.nextWake(two.Add(10 * time.Minute)); running != 3 || !next.Equal(two.Add(11*time.Minute)) {
		// d and e are due but blocked: they must not make the loop spin.
		t.Errorf("nextWake = %v, %d running; want the 1-minute cap and 3", next, running)
	}
}

func TestNoOverlapAndCoalescing(t *testing.T) {
	now := at(t, "2026-11-27 01:00:00")
	s := NewScheduler(newFakeClock(now), 0, nil)
	every := sched(t, "@every 1m")
	s.Set([]Job{{Name: "a", Class: ClassBackup, Schedule: every, Run: noop}})
	got := s.startDue(now.Add(time.Minute))
	if len(got) != 1 {
		t.Fatalf("started %v, want [a]", names(got))
	}
	// Five activations pass while it runs: none starts a second copy.
	for i := 2; i <= 6; i++ {
		if again := s.startDue(now.Add(time.Duration(i) * time.Minute)); len(again) != 0 {
			t.Fatalf("started a second copy of a running job at +%dm", i)
		}
	}
	end := now.Add(6*time.Minute + 30*time.Second)
	s.finish(got[0], end)
	// The missed activations are not queued up: one next run.
	if st := s.Jobs()[0]; !st.Next.Equal(end.Add(time.Minute)) || st.Running {
		t.Errorf("after the long run: %+v; want next a minute after it ended", st)
	}
	if again := s.startDue(end); len(again) != 0 {
		t.Errorf("missed activations were queued: %v", names(again))
	}
}

func TestRetryBackoffState(t *testing.T) {
	now := at(t, "2026-11-27 01:00:00")
	s := NewScheduler(newFakeClock(now), 0, nil)
	daily := sched(t, "0 2 * * *")
	s.Set([]Job{{Name: "a", Class: ClassBackup, Schedule: daily, Attempts: 3, Delay: 5 * time.Minute, Run: noop}})
	tm := at(t, "2026-11-27 02:00:00")
	boom := errors.New("boom")
	for _, want := range []struct {
		attempt int
		next    string
	}{
		{2, "2026-11-27 02:05:01"}, // first retry after delay
		{3, "2026-11-27 02:15:02"}, // then twice the delay
		{1, "2026-11-28 02:00:00"}, // given up: the next night
	} {
		got := s.startDue(tm)
		if len(got) != 1 {
			t.Fatalf("at %v: started %v, want [a]", tm, names(got))
		}
		got[0].err = boom
		s.finish(got[0], tm.Add(time.Second))
		st := s.Jobs()[0]
		if st.Attempt != want.attempt || !st.Next.Equal(at(t, want.next)) {
			t.Fatalf("after the failure at %v: attempt %d next %v; want %d at %s", tm, st.Attempt, st.Next.In(zurich), want.attempt, want.next)
		}
		tm = st.Next
	}
	// A success ends the retries too.
	got := s.startDue(tm)
	got[0].err = boom
	s.finish(got[0], tm)
	got = s.startDue(s.Jobs()[0].Next)
	got[0].err = nil
	s.finish(got[0], tm.Add(6*time.Minute))
	if st := s.Jobs()[0]; st.Attempt != 1 || !st.Next.Equal(at(t, "2026-11-29 02:00:00")) {
		t.Errorf("after a successful retry: %+v", st)
	}
}

func TestCatchUp(t *testing.T) {
	daily := sched(t, "0 2 * * *")
	now := at(t, "2026-11-27 10:00:00")
	for _, tc := range []struct {
		name    string
		catchUp bool
		last    string // "" never
		due     bool
	}{
		{"missed last night", true, "2026-11-26 02:00:07", true},
		{"ran last night", true, "2026-11-27 02:00:07", false},
		{"never succeeded", true, "", true},
		{"missed, but no catch-up", false, "2026-11-20 02:00:00", false},
		{"ran after a manual backup", true, "2026-11-27 09:00:00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewScheduler(newFakeClock(now), 0, nil)
			j := Job{Name: "a", Class: ClassBackup, Schedule: daily, CatchUp: tc.catchUp, Run: noop}
			if tc.last != "" {
				j.LastSuccess = at(t, tc.last)
			}
			s.Set([]Job{j})
			got := s.startDue(now)
			if (len(got) == 1) != tc.due {
				t.Fatalf("due at start-up = %v, want %v", len(got) == 1, tc.due)
			}
			if !tc.due {
				if st := s.Jobs()[0]; !st.Next.Equal(at(t, "2026-11-28 02:00:00")) {
					t.Errorf("next = %v, want tonight", st.Next)
				}
			}
		})
	}
}

func TestSetKeepsStateAndRemoves(t *testing.T) {
	now := at(t, "2026-11-27 01:00:00")
	s := NewScheduler(newFakeClock(now), 0, nil)
	daily, hourly := sched(t, "0 2 * * *"), sched(t, "@hourly")
	s.Set([]Job{
		{Name: "a", Class: ClassBackup, Schedule: daily, Run: noop},
		{Name: "b", Class: ClassBackup, Schedule: daily, Run: noop},
	})
	running := s.startDue(at(t, "2026-11-27 02:00:00"))
	if len(running) != 1 {
		t.Fatalf("started %v; want one (limit 1)", names(running))
	}
	// Reload: a's schedule changes, b disappears, c is new (never ran:
	// catch-up).
	s.Set([]Job{
		{Name: "a", Class: ClassBackup, Schedule: hourly, Run: noop},
		{Name: "c", Class: ClassBackup, Schedule: daily, CatchUp: true, Run: noop},
	})
	jobs := s.Jobs()
	if len(jobs) != 2 || jobs[0].Name != "a" || !jobs[0].Running || jobs[1].Name != "c" {
		t.Fatalf("after reload: %+v", jobs)
	}
	s.finish(running[0], at(t, "2026-11-27 02:10:00"))
	if st := s.Jobs()[0]; !st.Next.Equal(at(t, "2026-11-27 03:00:00")) {
		t.Errorf("a follows its new schedule: next %v, want 03:00", st.Next.In(zurich))
	}
	if got := s.startDue(at(t, "2026-11-27 02:10:00")); fmt.Sprint(names(got)) != "[c]" {
		t.Errorf("started %v, want the new job c (catch-up)", names(got))
	}
}

// loopDriver observes the scheduler loop through its idle hook.
type loopDriver struct {
	mu      sync.Mutex
	cond    *sync.Cond
	seq     int
	next    time.Time
	running int
	blocked int // jobs known to wait for their context
	dead    bool
}

// setBlocked changes the number of jobs that wait for their context.
func (d *loopDriver) setBlocked(delta int) {
	d.mu.Lock()
	d.blocked += delta
	d.cond.Broadcast()
	d.mu.Unlock()
}

// settled waits until the loop went idle after seq with only blocked jobs
// running, and returns its state.
func (d *loopDriver) settled(t *testing.T, seq int) (int, time.Time) {
	t.Helper()
	timer := time.AfterFunc(10*time.Second, func() {
		d.mu.Lock()
		d.dead = true
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer timer.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for (d.seq <= seq || d.running != d.blocked) && !d.dead {
		d.cond.Wait()
	}
	if d.dead {
		t.Fatalf("the scheduler loop did not settle after %d (last: next %v, %d running, %d blocked)", seq, d.next, d.running, d.blocked)
	}
	return d.seq, d.next
}

func drive(s *Scheduler) *loopDriver {
	d := &loopDriver{}
	d.cond = sync.NewCond(&d.mu)
	s.testHookIdle = func(next time.Time, running int) {
		d.mu.Lock()
		d.seq++
		d.next, d.running = next, running
		d.cond.Broadcast()
		d.mu.Unlock()
	}
	return d
}

// wait returns the loop's state once it went idle after seq.
func (d *loopDriver) wait(t *testing.T, seq int) (int, time.Time, int) {
	t.Helper()
	timer := time.AfterFunc(10*time.Second, func() {
		d.mu.Lock()
		d.dead = true
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer timer.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.seq <= seq && !d.dead {
		d.cond.Wait()
	}
	if d.dead {
		t.Fatalf("the scheduler loop did not go idle after %d (last: next %v, %d running)", seq, d.next, d.running)
	}
	return d.seq, d.next, d.running
}

func TestRunLoopRetries(t *testing.T) {
	start := at(t, "2026-11-27 01:59:00")
	clk := newFakeClock(start)
	s := NewScheduler(clk, time.Minute, nil)
	d := drive(s)
	type call struct {
		a  Attempt
		at time.Time
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	s.Set([]Job{{Name: "a", Class: ClassBackup, Schedule: sched(t, "0 2 * * *"), Attempts: 3, Delay: 5 * time.Minute,
		Run: func(ctx context.Context, a Attempt) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, call{a, clk.Now()})
			if a.N < 3 {
				return errors.New("database down")
			}
			return nil
		}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	seq := 0
	for {
		var next time.Time
		var running int
		seq, next, running = d.wait(t, seq)
		if running > 0 {
			continue
		}
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		if n == 4 || next.After(at(t, "2026-11-28 03:00:00")) {
			break
		}
		clk.AdvanceTo(next)
	}
	cancel()
	<-done
	want := []call{
		{Attempt{1, 3}, at(t, "2026-11-27 02:00:00")},
		{Attempt{2, 3}, at(t, "2026-11-27 02:05:00")},
		{Attempt{3, 3}, at(t, "2026-11-27 02:15:00")},
		{Attempt{1, 3}, at(t, "2026-11-28 02:00:00")},
	}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls:\n%v\nwant:\n%v", calls, want)
	}
}

func TestRunLoopConcurrency(t *testing.T) {
	start := at(t, "2026-11-27 01:59:30")
	clk := newFakeClock(start)
	s := NewScheduler(clk, time.Minute, nil)
	s.SetLimit(ClassBackup, 2)
	d := drive(s)
	var (
		mu         sync.Mutex
		now, most  int
		perName    = map[string]int{}
		mostOfOne  int
		runs       = map[string]int{}
		total      int
		startedQ   = make(chan chan struct{}, 100) // each run's release, in start order
		pending    []chan struct{}
		maxRunning int
	)
	every := sched(t, "@every 1m")
	var jobs []Job
	for _, n := range []string{"a", "b", "c", "d"} {
		jobs = append(jobs, Job{Name: n, Class: ClassBackup, Schedule: every, Run: func(ctx context.Context, _ Attempt) error {
			release := make(chan struct{})
			mu.Lock()
			now++
			perName[n]++
			runs[n]++
			total++
			most, mostOfOne = max(most, now), max(mostOfOne, perName[n])
			mu.Unlock()
			startedQ <- release
			<-release
			mu.Lock()
			now--
			perName[n]--
			mu.Unlock()
			return nil
		}})
	}
	s.Set(jobs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	// releaseOldest ends the run that started first.
	releaseOldest := func() {
		if len(pending) == 0 {
			pending = append(pending, <-startedQ)
		}
		for more := true; more; {
			select {
			case r := <-startedQ:
				pending = append(pending, r)
			default:
				more = false
			}
		}
		close(pending[0])
		pending = pending[1:]
	}
	seq := 0
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n >= 20 {
			break
		}
		var next time.Time
		var running int
		seq, next, running = d.wait(t, seq)
		maxRunning = max(maxRunning, running)
		if running < 2 {
			// A slot is free: let time pass to the next start.
			clk.AdvanceTo(next)
			continue
		}
		clk.Advance(90 * time.Second) // activations pass with both slots taken
		seq, _, _ = d.wait(t, seq)
		releaseOldest()
	}
	cancel()
	for {
		select {
		case r := <-startedQ:
			pending = append(pending, r)
			continue
		case <-done:
		default:
			if len(pending) > 0 {
				close(pending[0])
				pending = pending[1:]
			}
			continue
		}
		break
	}
	mu.Lock()
	defer mu.Unlock()
	// The scheduler's count is the bound; the jobs' own count can only
	// be lower (a started goroutine may not have run yet).
	if maxRunning != 2 || most > 2 {
		t.Errorf("at most %d backups ran at once (the jobs saw %d); want exactly the limit, 2", maxRunning, most)
	}
	if mostOfOne != 1 {
		t.Errorf("a job ran %d times at once", mostOfOne)
	}
	if len(runs) != 4 {
		t.Errorf("jobs that ran: %v; want all four", runs)
	}
}

func TestRunGrace(t *testing.T) {
	for _, tc := range []struct {
		name      string
		finishes  bool // the job ends within the grace period
		cancelled bool // the job's context was cancelled
	}{
		{"finishes within grace", true, false},
		{"cancelled after grace", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := at(t, "2026-11-27 02:00:00")
			clk := newFakeClock(start)
			const grace = 7*time.Minute + 13*time.Second
			s := NewScheduler(clk, grace, nil)
			started := make(chan struct{})
			release := make(chan struct{})
			var ctxErr atomic.Value
			var startedOther atomic.Bool
			s.Set([]Job{
				{Name: "a", Class: ClassBackup, Schedule: sched(t, "@every 1m"), CatchUp: true, Run: func(ctx context.Context, _ Attempt) error {
					close(started)
					select {
					case <-release:
					case <-ctx.Done():
					}
					ctxErr.Store(fmt.Sprint(ctx.Err()))
					return ctx.Err()
				}},
				{Name: "b", Class: ClassMaintenance, Schedule: sched(t, "@every 1m"), Run: func(context.Context, Attempt) error {
					startedOther.Store(true)
					return nil
				}},
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.Run(ctx); close(done) }()
			<-started
			cancel() // SIGTERM
			clk.waitAsked(t, start.Add(grace))
			clk.Advance(time.Minute) // b would be due: nothing new starts
			if tc.finishes {
				close(release)
			} else {
				clk.Advance(grace)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			if got := ctxErr.Load(); (got != "<nil>") != tc.cancelled {
				t.Errorf("job context error %v; cancelled want %v", got, tc.cancelled)
			}
			if startedOther.Load() {
				t.Error("a job started during shutdown")
			}
		})
	}
}

var _ cron.Schedule = Shifted{}

func TestRunSurvivesPanic(t *testing.T) {
	start := at(t, "2026-11-27 01:59:00")
	clk := newFakeClock(start)
	s := NewScheduler(clk, time.Minute, nil)
	d := drive(s)
	var calls, second atomic.Int32
	s.Set([]Job{{Name: "a", Class: ClassBackup, Schedule: sched(t, "@every 1m"), Attempts: 2, Delay: time.Minute,
		Run: func(_ context.Context, a Attempt) error {
			if calls.Add(1) == 2 {
				second.Store(int32(a.N))
			}
			if a.N == 1 {
				panic("index out of range") // a bug
			}
			return nil
		}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	seq := 0
	for calls.Load() < 2 {
		var next time.Time
		var running int
		seq, next, running = d.wait(t, seq)
		if running == 0 {
			clk.AdvanceTo(next)
		}
	}
	cancel()
	<-done
	// The panicking attempt counted as a failed one: the next was its
	// retry.
	if n := second.Load(); n != 2 {
		t.Errorf("the call after the panic was attempt %d, want 2", n)
	}
}

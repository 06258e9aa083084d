package service

import "time"

// Clock is the scheduler's source of time. Tests inject a fake one to run
// days of schedule in milliseconds.
type Clock interface {
	Now() time.Time
	// TimerAt returns a channel that receives once the clock reached t,
	// and a function that stops the timer. A deadline rather than a
	// duration, so that a clock moving between Now and TimerAt cannot
	// push the wake-up back.
	TimerAt(t time.Time) (<-chan time.Time, func() bool)
}

// RealClock is the wall clock.
type RealClock struct{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }

// TimerAt implements Clock.
func (RealClock) TimerAt(t time.Time) (<-chan time.Time, func() bool) {
	tm := time.NewTimer(time.Until(t))
	return tm.C, tm.Stop
}

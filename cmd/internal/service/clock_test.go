package service

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	timers []*fakeTimer
	asked  []time.Time // every deadline TimerAt was called with
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	c := &fakeClock{now: now}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) TimerAt(at time.Time) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, at)
	c.cond.Broadcast()
	t := &fakeTimer{at: at, ch: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.ch <- c.now
		return t.ch, func() bool { return false }
	}
	c.timers = append(c.timers, t)
	return t.ch, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.timers {
			if x == t {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				return true
			}
		}
		return false
	}
}

// AdvanceTo moves the clock to t (never back) and fires the timers due.
func (c *fakeClock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	keep := c.timers[:0]
	for _, x := range c.timers {
		if x.at.After(c.now) {
			keep = append(keep, x)
			continue
		}
		x.ch <- c.now
	}
	c.timers = keep
}

// Advance moves the clock by d.
func (c *fakeClock) Advance(d time.Duration) { c.AdvanceTo(c.Now().Add(d)) }

// waitAsked blocks until TimerAt was called with d.
func (c *fakeClock) waitAsked(t *testing.T, d time.Time) {
	t.Helper()
	stop := time.AfterFunc(10*time.Second, func() {
		c.mu.Lock()
		c.asked = append(c.asked, time.Time{}) // wakes the waiter to fail
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for _, a := range c.asked {
			if a.Equal(d) {
				return
			}
			if a.IsZero() {
				t.Fatalf("no timer of %v was started", d)
			}
		}
		c.cond.Wait()
	}
}

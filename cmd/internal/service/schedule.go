package service

import (
	"hash/fnv"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/mbackup/mbackup/cmd/internal/status"
)

// DefaultSpread is the window over which environments sharing a schedule
// are spread.
const DefaultSpread = 30 * time.Minute

// Offset returns name's stable start offset within window: whole seconds
// from a hash of the name, so an environment starts at the same minute
// every night, and a fleet of them does not start at 02:00:00 at once.
// The window is capped at the schedule's period (period 0: not capped),
// so `@every 2s` stays every 2 s.
func Offset(name string, window, period time.Duration) time.Duration {
	if period > 0 && window > period {
		window = period
	}
	secs := uint64(window / time.Second)
	if secs == 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64()%secs) * time.Second
}

// Shifted is a cron schedule whose activations all come Offset later.
type Shifted struct {
	Schedule cron.Schedule
	Offset   time.Duration
}

// Next implements cron.Schedule.
func (s Shifted) Next(t time.Time) time.Time {
	n := s.Schedule.Next(t.Add(-s.Offset))
	if n.IsZero() {
		return n
	}
	return n.Add(s.Offset)
}

// Spread shifts s by name's Offset within window, the window capped at
// the schedule's period as of now.
func Spread(s cron.Schedule, name string, window time.Duration, now time.Time) cron.Schedule {
	off := Offset(name, window, status.Period(s, now))
	if off == 0 {
		return s
	}
	return Shifted{Schedule: s, Offset: off}
}

// Backoff returns the pause before attempt (2, 3, ...): delay, then
// doubling, capped at MaxBackoff (or at delay when that is longer).
func Backoff(delay time.Duration, attempt int) time.Duration {
	if attempt < 2 || delay <= 0 {
		return max(delay, 0)
	}
	limit := max(delay, MaxBackoff)
	d := delay
	for i := 2; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// MaxBackoff caps the pause between attempts of a failing job.
const MaxBackoff = time.Hour

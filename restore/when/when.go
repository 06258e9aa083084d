package when

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Instant is the result of Parse: either the newest snapshot (Latest) or a
// point in time T, in the time zone Parse was given.
type Instant struct {
	Latest bool
	T      time.Time
}

// String returns "latest" or T as "2006-01-02 15:04:05 MST".
func (i Instant) String() string {
	if i.Latest {
		return "latest"
	}
	return i.T.Format(timeFormat)
}

const timeFormat = "2006-01-02 15:04:05 MST"

// accepted lists the forms in every parse error.
const accepted = `accepted are latest, now, today, yesterday, YYYY-MM-DD, "YYYY-MM-DD HH:MM[:SS]", ` +
	`RFC 3339 like 2026-10-25T02:30:00+02:00, and "N UNIT ago" like 30m ago, 3h ago, 2 days ago, 1 week ago`

// ParseError is a WHEN expression Parse cannot read.
type ParseError struct {
	Expr   string
	Reason string // what is wrong, when more can be said than "unknown form"
}

func (e *ParseError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("invalid time %q (%s); %s", e.Expr, e.Reason, accepted)
	}
	return fmt.Sprintf("invalid time %q; %s", e.Expr, accepted)
}

// Parse reads a WHEN expression (see the package documentation) relative to
// now in the time zone loc; nil means time.Local. The returned T is in loc.
// Errors are *ParseError.
func Parse(expr string, now time.Time, loc *time.Location) (Instant, error) {
	if loc == nil {
		loc = time.Local
	}
	now = now.In(loc)
	s := strings.Join(strings.Fields(strings.ToLower(expr)), " ")
	switch s {
	case "latest":
		return Instant{Latest: true}, nil
	case "now":
		return Instant{T: now}, nil
	case "today":
		y, m, d := now.Date()
		return Instant{T: endOfDay(y, m, d, loc)}, nil
	case "yesterday":
		y, m, d := now.Date()
		return Instant{T: endOfDay(y, m, d-1, loc)}, nil
	}
	var (
		t   time.Time
		err error
	)
	if body, ok := strings.CutSuffix(s, " ago"); ok {
		t, err = parseRelative(body, now, loc)
	} else {
		t, err = parseAbsolute(s, loc)
	}
	if errors.Is(err, errUnknownForm) {
		return Instant{}, &ParseError{Expr: expr}
	}
	if err != nil {
		return Instant{}, &ParseError{Expr: expr, Reason: err.Error()}
	}
	return Instant{T: t}, nil
}

// errUnknownForm means the expression has none of the accepted shapes; the
// ParseError then just lists them.
var errUnknownForm = errors.New("unknown form")

func parseAbsolute(s string, loc *time.Location) (time.Time, error) {
	// local layouts are wall times in loc; the others carry an offset.
	// period is how long the written value lasts: the instant is its end.
	layouts := [...]struct {
		layout string
		local  bool
		period time.Duration
	}{
		{"2006-01-02", true, 0}, // a calendar day, see endOfDay
		{"2006-01-02 15:04", true, time.Minute},
		{"2006-01-02T15:04", true, time.Minute},
		{"2006-01-02 15:04:05", true, time.Second},
		{"2006-01-02T15:04:05", true, time.Second},
		{time.RFC3339, false, time.Second},
		{"2006-01-02 15:04:05Z07:00", false, time.Second},
	}
	u := strings.ToUpper(s) // RFC 3339 wants T and Z
	var rangeErr error
	for _, l := range layouts {
		t, err := time.Parse(l.layout, u)
		if err != nil {
			var pe *time.ParseError
			if rangeErr == nil && errors.As(err, &pe) && strings.HasSuffix(pe.Message, "out of range") {
				rangeErr = errors.New(strings.TrimPrefix(pe.Message, ": "))
			}
			continue
		}
		if l.period == 0 {
			y, m, d := t.Date()
			return endOfDay(y, m, d, loc), nil
		}
		// A fraction of a second makes the value exact rather than a period.
		exact := strings.ContainsAny(u, ".,")
		switch {
		case !l.local && exact:
			return t.In(loc), nil
		case !l.local:
			return t.Add(l.period - 1).In(loc), nil
		case exact:
			return resolve(t, loc), nil // t holds the wall time, read as UTC
		default:
			return resolve(t, loc).Add(l.period - 1), nil
		}
	}
	if rangeErr != nil {
		return time.Time{}, rangeErr
	}
	return time.Time{}, errUnknownForm
}

// endOfDay returns the last nanosecond of the calendar day y-m-d in loc
// (d may be out of range, as for time.Date).
func endOfDay(y int, m time.Month, d int, loc *time.Location) time.Time {
	return resolve(time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC), loc).Add(-1)
}

// resolve returns the instant at which clocks in loc show the wall time
// held in wall's UTC fields. A wall time skipped by a DST change is shifted
// forward by the length of the gap; of a wall time that occurs twice the
// earlier instant is returned. time.Date leaves both choices unspecified.
func resolve(wall time.Time, loc *time.Location) time.Time {
	// Every UTC offset in force within a day of wall: the true instant is
	// wall minus one of them.
	var offsets []int
	p, stop := wall.Add(-15*time.Hour), wall.Add(15*time.Hour)
	for {
		z := p.In(loc)
		_, off := z.Zone()
		offsets = append(offsets, off)
		_, end := z.ZoneBounds()
		if end.IsZero() || !end.Before(stop) {
			break
		}
		p = end
	}
	var (
		best  time.Time
		found bool
	)
	for _, off := range offsets {
		t := wall.Add(-time.Duration(off) * time.Second)
		if _, o := t.In(loc).Zone(); o == off && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	if found {
		return best.In(loc)
	}
	// In a gap no offset fits. Reading wall with the offset in force before
	// the change shifts it forward by the gap; it is the latest reading.
	for i, off := range offsets {
		_, o := wall.Add(-time.Duration(off) * time.Second).In(loc).Zone()
		if t := wall.Add(-time.Duration(o) * time.Second); i == 0 || t.After(best) {
			best = t
		}
	}
	return best.In(loc)
}

// relativeUnit returns the rank of a unit word of "N UNIT ago" (to
// enforce largest first) and its size in calendar days or in seconds.
func relativeUnit(word string) (rank int, days, seconds int64, ok bool) {
	switch word {
	case "w", "week", "weeks":
		return 5, 7, 0, true
	case "d", "day", "days":
		return 4, 1, 0, true
	case "h", "hr", "hrs", "hour", "hours":
		return 3, 0, 3600, true
	case "m", "min", "mins", "minute", "minutes":
		return 2, 0, 60, true
	case "s", "sec", "secs", "second", "seconds":
		return 1, 0, 1, true
	}
	return 0, 0, 0, false
}

// Limits that keep the arithmetic far from overflow.
const (
	maxRelativeNumber  = 1_000_000_000
	maxRelativeDays    = 100 * 366
	maxRelativeSeconds = maxRelativeDays * 86400
)

// parseRelative reads the part of "N UNIT ago" before "ago".
func parseRelative(body string, now time.Time, loc *time.Location) (time.Time, error) {
	var days, seconds int64
	lastRank := 6
	s := body
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return time.Time{}, fmt.Errorf("expected a number at %q", s)
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > maxRelativeNumber {
			return time.Time{}, fmt.Errorf("%s is too large", s[:i])
		}
		s = strings.TrimLeft(s[i:], " ")
		j := 0
		for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
			j++
		}
		rank, unitDays, unitSeconds, ok := relativeUnit(s[:j])
		if !ok {
			if j == 0 {
				return time.Time{}, fmt.Errorf("a unit is missing after %d", n)
			}
			return time.Time{}, fmt.Errorf("unknown unit %q", s[:j])
		}
		if rank >= lastRank {
			return time.Time{}, fmt.Errorf("write units largest first, each once")
		}
		lastRank = rank
		days += n * unitDays
		seconds += n * unitSeconds
		s = s[j:]
	}
	if lastRank == 6 {
		return time.Time{}, errUnknownForm
	}
	if days > maxRelativeDays || seconds > maxRelativeSeconds {
		return time.Time{}, fmt.Errorf("more than 100 years back")
	}
	t := now
	if days > 0 {
		y, m, d := now.Date()
		h, mi, sec := now.Clock()
		t = resolve(time.Date(y, m, d-int(days), h, mi, sec, now.Nanosecond(), time.UTC), loc)
	}
	return t.Add(-time.Duration(seconds) * time.Second).In(loc), nil
}

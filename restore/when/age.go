package when

import (
	"strconv"
	"time"
)

// FormatAge renders a snapshot's age with its two largest units, dropping
// the second when it is zero: "2d 3h", "2d", "1h 5m", "45m", "12s", and "0s"
// under a second. Days are 24 hours. A negative age (a snapshot from the
// future, e.g. clock skew) gets a leading minus: "-5m".
func FormatAge(d time.Duration) string {
	if d < 0 {
		if d == -d { // the most negative Duration has no positive twin
			d++
		}
		return "-" + FormatAge(-d)
	}
	parts := [4]struct {
		n    int64
		unit string
	}{
		{int64(d / (24 * time.Hour)), "d"},
		{int64(d % (24 * time.Hour) / time.Hour), "h"},
		{int64(d % time.Hour / time.Minute), "m"},
		{int64(d % time.Minute / time.Second), "s"},
	}
	for i, p := range parts {
		if p.n == 0 {
			continue
		}
		s := strconv.FormatInt(p.n, 10) + p.unit
		if i+1 < len(parts) && parts[i+1].n != 0 {
			s += " " + strconv.FormatInt(parts[i+1].n, 10) + parts[i+1].unit
		}
		return s
	}
	return "0s"
}

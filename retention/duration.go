package retention

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxDurationNumber bounds each number in a calendar duration so that
// time.AddDate cannot overflow; a million days is already 2,700 years.
const maxDurationNumber = 1_000_000

// durationForms is appended to every parse error so that a bad value in a
// config file explains how to write a good one.
const durationForms = `use years, months, weeks, days and hours like 2y5m7d3h, 2w or 14d, or a Go duration like 36h, 90s or 0s`

// Duration is a span of time for keep-within rules: a calendar part
// (years, months, weeks, days), subtracted with time.AddDate in the policy's
// time zone, and an exact Clock part, subtracted with time.Add.
//
// Its text form is restic's --keep-within syntax, 2y5m7d3h, extended with w
// for weeks and with Go durations such as 36h, 1h30m, 90s and 0s. As in
// restic, a bare m means months: 30m is thirty months, not thirty minutes.
// It means minutes only inside a Go duration, after an h (1h30m) or before
// an s (5m30s). Reading minutes as months can only keep more snapshots,
// never fewer.
type Duration struct {
	Years, Months, Weeks, Days int
	Clock                      time.Duration
}

// ParseDuration parses the text form described on Duration. The empty
// string and "0" are the zero Duration. Calendar units (y, m, w, d) may come
// in any order, each at most once; hours and Go durations come last.
// Negative values are rejected.
func ParseDuration(s string) (Duration, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	if in == "" || in == "0" {
		return Duration{}, nil
	}
	d, err := parseDuration(in)
	if err != nil {
		return Duration{}, fmt.Errorf("invalid duration %q (%v): %s", s, err, durationForms)
	}
	return d, nil
}

func parseDuration(s string) (Duration, error) {
	if strings.Contains(s, "-") {
		return Duration{}, fmt.Errorf("negative")
	}
	cal, rest, err := parseCalendar(s)
	if err != nil {
		return Duration{}, err
	}
	if rest == "" {
		return cal, nil
	}
	// After the calendar units only an hour-led Go duration may follow, so
	// that the m in 2y5m is a month and the m in 2y1h30m a minute.
	if startsWithHours(rest) {
		clock, err := time.ParseDuration(rest)
		if err == nil {
			cal.Clock = clock
			return cal, nil
		}
	}
	if clock, err := time.ParseDuration(s); err == nil {
		return Duration{Clock: clock}, nil
	}
	return Duration{}, fmt.Errorf("cannot read %q", rest)
}

// parseCalendar consumes leading <number><unit> tokens whose unit is y, m,
// w or d and returns what it could not consume.
func parseCalendar(s string) (d Duration, rest string, err error) {
	seen := map[byte]bool{}
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) {
			return d, s, nil
		}
		unit := s[i]
		if unit != 'y' && unit != 'm' && unit != 'w' && unit != 'd' {
			return d, s, nil
		}
		// 5m30s: the m belongs to a Go duration, let the caller decide.
		if i+1 < len(s) && isLetter(s[i+1]) {
			return d, s, nil
		}
		if seen[unit] {
			return d, s, fmt.Errorf("unit %c given twice", unit)
		}
		seen[unit] = true
		n, err := strconv.Atoi(s[:i])
		if err != nil || n > maxDurationNumber {
			return d, s, fmt.Errorf("%s%c is too large", s[:i], unit)
		}
		switch unit {
		case 'y':
			d.Years = n
		case 'm':
			d.Months = n
		case 'w':
			d.Weeks = n
		case 'd':
			d.Days = n
		}
		s = s[i+1:]
	}
	return d, "", nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// startsWithHours reports whether s begins with a number followed by h.
func startsWithHours(s string) bool {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	return i > 0 && i < len(s) && s[i] == 'h'
}

// IsZero reports whether d spans no time at all.
func (d Duration) IsZero() bool { return d == Duration{} }

// Ago returns the instant d before t: the calendar part is subtracted with
// t.AddDate in t's location (so 1d before noon is noon the day before, even
// across a DST change, and 1m before March 31 is March 3 after AddDate's
// normalisation, as in restic), then the Clock part with t.Add.
func (d Duration) Ago(t time.Time) time.Time {
	return t.AddDate(-d.Years, -d.Months, -(7*d.Weeks + d.Days)).Add(-d.Clock)
}

// String returns the canonical text form, "0s" for the zero Duration.
// ParseDuration(d.String()) == d for every d with non-negative fields.
func (d Duration) String() string {
	var b strings.Builder
	for _, p := range []struct {
		n    int
		unit string
	}{{d.Years, "y"}, {d.Months, "m"}, {d.Weeks, "w"}, {d.Days, "d"}} {
		if p.n != 0 {
			b.WriteString(strconv.Itoa(p.n))
			b.WriteString(p.unit)
		}
	}
	switch {
	case d.Clock == 0:
		if b.Len() == 0 {
			return "0s"
		}
	case d.Clock%time.Hour == 0:
		b.WriteString(strconv.FormatInt(int64(d.Clock/time.Hour), 10))
		b.WriteString("h")
	default:
		// A leading 0h keeps the clock part unambiguous after a calendar
		// part: 1m0h30s is a month and 30 seconds, 1m30s a minute and a half.
		if b.Len() > 0 && d.Clock > 0 && d.Clock < time.Hour {
			b.WriteString("0h")
		}
		b.WriteString(d.Clock.String())
	}
	return b.String()
}

// MarshalText implements encoding.TextMarshaler (JSON and YAML output).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (flags, JSON).
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler so that a bad value in a config
// file is reported with its line. A null value is the zero Duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a single value: %s", n.Line, durationForms)
	}
	if n.Tag == "!!null" {
		*d = Duration{}
		return nil
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

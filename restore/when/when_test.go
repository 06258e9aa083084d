package when

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the host's zoneinfo
)

func zurich(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func rfc(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return tm
}

// Europe/Zurich springs forward on 2026-03-29 at 01:00Z (02:00 CET becomes
// 03:00 CEST) and falls back on 2026-10-25 at 01:00Z (03:00 CEST becomes
// 02:00 CET). Expected instants are written in UTC.
func TestParse(t *testing.T) {
	zrh := zurich(t)
	const (
		springDay     = "2026-03-29T12:00:00+02:00" // 10:00Z
		afterSpring   = "2026-03-30T02:30:00+02:00" // 00:30Z
		springMidnite = "2026-03-29T00:30:00+01:00" // 2026-03-28T23:30Z
		fallDay       = "2026-10-25T12:00:00+01:00" // 11:00Z
		afterFall     = "2026-10-26T02:30:00+01:00" // 01:30Z
		fallMidnite   = "2026-10-25T23:30:00Z"      // 2026-10-26 00:30 CET
		weekAfterFall = "2026-10-31T12:00:00+01:00" // 11:00Z
		weeksSpring   = "2026-04-05T10:00:00+02:00" // 08:00Z
		newYear       = "2026-01-01T00:10:00+01:00" // 2025-12-31T23:10Z
		march         = "2026-03-01T08:00:00+01:00" // 07:00Z
		leapMarch     = "2024-03-01T08:00:00+01:00"
	)
	tests := []struct {
		expr, now string
		want      string // RFC 3339 in UTC, or "latest"
	}{
		{"latest", springDay, "latest"},
		{"  LATEST ", springDay, "latest"},
		{"now", springDay, "2026-03-29T10:00:00Z"},
		{"Now", fallMidnite, "2026-10-25T23:30:00Z"},

		// Ends of days: 23 hours on March 29, 25 hours on October 25.
		{"today", springDay, "2026-03-29T21:59:59.999999999Z"},
		{"TODAY", springDay, "2026-03-29T21:59:59.999999999Z"},
		{"yesterday", springDay, "2026-03-28T22:59:59.999999999Z"},
		{"yesterday", afterSpring, "2026-03-29T21:59:59.999999999Z"},
		{"today", fallDay, "2026-10-25T22:59:59.999999999Z"},
		{"yesterday", fallDay, "2026-10-24T21:59:59.999999999Z"},
		{"2026-03-29", fallDay, "2026-03-29T21:59:59.999999999Z"},
		{"2026-03-28", fallDay, "2026-03-28T22:59:59.999999999Z"},
		{"2026-10-25", fallDay, "2026-10-25T22:59:59.999999999Z"},
		{" 2026-10-24 ", fallDay, "2026-10-24T21:59:59.999999999Z"},
		{"2030-01-01", fallDay, "2030-01-01T22:59:59.999999999Z"},

		// yesterday at 00:30 local, when UTC is still on the day before.
		{"today", fallMidnite, "2026-10-26T22:59:59.999999999Z"},
		{"yesterday", fallMidnite, "2026-10-25T22:59:59.999999999Z"},
		{"today", springMidnite, "2026-03-29T21:59:59.999999999Z"},
		{"yesterday", springMidnite, "2026-03-28T22:59:59.999999999Z"},

		// Month, year and leap-day boundaries.
		{"yesterday", newYear, "2025-12-31T22:59:59.999999999Z"},
		{"today", newYear, "2026-01-01T22:59:59.999999999Z"},
		{"2 days ago", newYear, "2025-12-29T23:10:00Z"},
		{"1 week ago", newYear, "2025-12-24T23:10:00Z"},
		{"2025-12-31 23:59", newYear, "2025-12-31T22:59:59.999999999Z"},
		{"2025-12-31 23:59:59", newYear, "2025-12-31T22:59:59.999999999Z"},
		{"yesterday", march, "2026-02-28T22:59:59.999999999Z"},
		{"1 day ago", march, "2026-02-28T07:00:00Z"},
		{"yesterday", leapMarch, "2024-02-29T22:59:59.999999999Z"},
		{"2024-02-29", leapMarch, "2024-02-29T22:59:59.999999999Z"},

		// Local minutes and seconds mean the end of that minute or second.
		{"2026-03-29 01:59:59", springDay, "2026-03-29T00:59:59.999999999Z"},
		{"2026-03-29 03:00", springDay, "2026-03-29T01:00:59.999999999Z"},
		{"2026-10-25 03:00", fallDay, "2026-10-25T02:00:59.999999999Z"},
		{"2026-10-25 01:59", fallDay, "2026-10-24T23:59:59.999999999Z"},
		{"2026-10-25T03:00", fallDay, "2026-10-25T02:00:59.999999999Z"},
		{"2026-10-25t03:00:00", fallDay, "2026-10-25T02:00:00.999999999Z"},
		// Spring-forward gap: shifted forward by the hour (02:30 -> 03:30 CEST).
		{"2026-03-29 02:30", springDay, "2026-03-29T01:30:59.999999999Z"},
		{"2026-03-29 02:00", springDay, "2026-03-29T01:00:59.999999999Z"},
		{"2026-03-29 02:59:59", springDay, "2026-03-29T01:59:59.999999999Z"},
		{"2026-03-29T02:30", springDay, "2026-03-29T01:30:59.999999999Z"},
		// Fall-back overlap: the earlier instant (CEST).
		{"2026-10-25 02:30", fallDay, "2026-10-25T00:30:59.999999999Z"},
		{"2026-10-25 02:30:15", fallDay, "2026-10-25T00:30:15.999999999Z"},
		{"2026-10-25 02:59", fallDay, "2026-10-25T00:59:59.999999999Z"},
		{"2026-10-25 02:00", fallDay, "2026-10-25T00:00:59.999999999Z"},
		// A fraction makes a local time exact.
		{"2026-10-25 02:30:15.5", fallDay, "2026-10-25T00:30:15.5Z"},

		// RFC 3339: the offset chooses; the end of the second unless a
		// fraction is given.
		{"2026-10-25T02:30:00+02:00", fallDay, "2026-10-25T00:30:00.999999999Z"},
		{"2026-10-25T02:30:00+01:00", fallDay, "2026-10-25T01:30:00.999999999Z"},
		{"2026-10-25 02:30:00+01:00", fallDay, "2026-10-25T01:30:00.999999999Z"},
		{"2026-10-25t01:30:00z", fallDay, "2026-10-25T01:30:00.999999999Z"},
		{"2026-10-25T01:30:00.25Z", fallDay, "2026-10-25T01:30:00.25Z"},
		{"2026-03-29T02:30:00+01:00", fallDay, "2026-03-29T01:30:00.999999999Z"},

		// Exact units.
		{"30m ago", fallDay, "2026-10-25T10:30:00Z"},
		{"3h ago", fallDay, "2026-10-25T08:00:00Z"},
		{"90s ago", fallDay, "2026-10-25T10:58:30Z"},
		{"1h30m ago", fallDay, "2026-10-25T09:30:00Z"},
		{"1h 30m ago", fallDay, "2026-10-25T09:30:00Z"},
		{"1 hour 30 minutes ago", fallDay, "2026-10-25T09:30:00Z"},
		{"45 MINUTES AGO", fallDay, "2026-10-25T10:15:00Z"},
		{"10 seconds ago", fallDay, "2026-10-25T10:59:50Z"},
		{"0s ago", fallDay, "2026-10-25T11:00:00Z"},
		{"12h ago", fallDay, "2026-10-24T23:00:00Z"}, // wall clock 13:00 -> 01:00
		{"11h ago", springDay, "2026-03-28T23:00:00Z"},
		{"24h ago", springDay, "2026-03-28T10:00:00Z"},
		{"24h ago", fallDay, "2026-10-24T11:00:00Z"},
		{"168h ago", weekAfterFall, "2026-10-24T11:00:00Z"},

		// Calendar days and weeks: same wall time, 23, 25, 169, 335 hours.
		{"1 day ago", springDay, "2026-03-28T11:00:00Z"},
		{"1d ago", springDay, "2026-03-28T11:00:00Z"},
		{"1 day 2 hours ago", springDay, "2026-03-28T09:00:00Z"},
		{"1 day ago", fallDay, "2026-10-24T10:00:00Z"},
		{"2 days ago", fallDay, "2026-10-23T10:00:00Z"},
		{"1 week ago", weekAfterFall, "2026-10-24T10:00:00Z"},
		{"1w ago", weekAfterFall, "2026-10-24T10:00:00Z"},
		{"2 weeks ago", weekAfterFall, "2026-10-17T10:00:00Z"},
		{"2 weeks ago", weeksSpring, "2026-03-22T09:00:00Z"},
		// The day before lands in the gap (02:30 -> 03:30 CEST, 23 hours
		// back) or in the overlap (the earlier 02:30, 25 hours back).
		{"1 day ago", afterSpring, "2026-03-29T01:30:00Z"},
		{"1 day ago", afterFall, "2026-10-25T00:30:00Z"},
	}
	for _, tc := range tests {
		now := rfc(t, tc.now)
		got, err := Parse(tc.expr, now, zrh)
		if err != nil {
			t.Errorf("Parse(%q, %s): %v", tc.expr, tc.now, err)
			continue
		}
		if tc.want == "latest" {
			if !got.Latest || !got.T.IsZero() {
				t.Errorf("Parse(%q) = %+v, want latest", tc.expr, got)
			}
			continue
		}
		want := rfc(t, tc.want)
		if got.Latest || !got.T.Equal(want) {
			t.Errorf("Parse(%q, now %s) = %s, want %s",
				tc.expr, tc.now, got.T.UTC().Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
		if got.T.Location() != zrh {
			t.Errorf("Parse(%q) returned a time in %v, want Europe/Zurich", tc.expr, got.T.Location())
		}
	}
}

func TestParseOtherZones(t *testing.T) {
	now := rfc(t, "2026-10-25T23:30:00Z")
	got, err := Parse("today", now, time.UTC)
	if err != nil || !got.T.Equal(rfc(t, "2026-10-25T23:59:59.999999999Z")) {
		t.Errorf("today in UTC = %v, %v", got.T, err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// New York falls back on 2026-11-01 at 06:00Z; 01:30 happens twice.
	got, err = Parse("2026-11-01 01:30", now, ny)
	if err != nil || !got.T.Equal(rfc(t, "2026-11-01T05:30:59.999999999Z")) {
		t.Errorf("ambiguous New York time = %v, %v; want the EDT one", got.T.UTC(), err)
	}
	// It springs forward on 2026-03-08 at 07:00Z; 02:30 does not exist.
	got, err = Parse("2026-03-08 02:30", now, ny)
	if err != nil || !got.T.Equal(rfc(t, "2026-03-08T07:30:59.999999999Z")) {
		t.Errorf("nonexistent New York time = %v, %v; want 03:30 EDT", got.T.UTC(), err)
	}
	// Sao Paulo's last DST change was at midnight: on 2018-11-04 clocks
	// went from 00:00 to 01:00, so November 3 ends at 03:00Z.
	sp, err := time.LoadLocation("America/Sao_Paulo")
	if err != nil {
		t.Fatal(err)
	}
	got, err = Parse("2018-11-03", now, sp)
	if err != nil || !got.T.Equal(rfc(t, "2018-11-04T02:59:59.999999999Z")) {
		t.Errorf("end of the day before a midnight gap = %v, %v", got.T.UTC(), err)
	}
	got, err = Parse("2018-11-04", now, sp)
	if err != nil || !got.T.Equal(rfc(t, "2018-11-05T01:59:59.999999999Z")) {
		t.Errorf("end of a 23-hour day starting at 01:00 = %v, %v", got.T.UTC(), err)
	}
	// On 2019-02-17 at 00:00 its clocks went back to 23:00, so the last hour
	// of February 16 happened twice; the day ends after the second one.
	got, err = Parse("2019-02-16", now, sp)
	if err != nil || !got.T.Equal(rfc(t, "2019-02-17T02:59:59.999999999Z")) {
		t.Errorf("end of a 25-hour day = %v, %v", got.T.UTC(), err)
	}
}

func TestParseErrors(t *testing.T) {
	zrh := zurich(t)
	now := rfc(t, "2026-10-25T12:00:00+01:00")
	tests := []struct {
		expr   string
		reason string // "" when the error only lists the accepted forms
	}{
		{"", ""},
		{"   ", ""},
		{"foo", ""},
		{"tomorrow", ""},
		{"2026/10/25", ""},
		{"25.10.2026", ""},
		{"3h", ""},
		{"ago", ""},
		{"2026-02-30", "day out of range"},
		{"2026-02-29", "day out of range"},
		{"2026-13-01", "month out of range"},
		{"2026-10-25 25:00", "hour out of range"},
		{"2026-10-25 12:60", "minute out of range"},
		{"3 ago", "a unit is missing after 3"},
		{"1.5h ago", "a unit is missing after 1"},
		{"-3h ago", `expected a number at "-3h"`},
		{"3 fortnights ago", `unknown unit "fortnights"`},
		{"1 month ago", `unknown unit "month"`},
		{"1m1h ago", "write units largest first, each once"},
		{"1h1h ago", "write units largest first, each once"},
		{"99999999999 days ago", "99999999999 is too large"},
		{"40000 days ago", "more than 100 years back"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.expr, now, zrh)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error = %v, want a *ParseError", tc.expr, err)
			continue
		}
		if pe.Expr != tc.expr || pe.Reason != tc.reason {
			t.Errorf("Parse(%q) = %+v, want reason %q", tc.expr, pe, tc.reason)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "accepted are latest, now, today, yesterday") {
			t.Errorf("Parse(%q) error %q: want one line listing the accepted forms", tc.expr, msg)
		}
	}
	_, err := Parse("2026-02-30", now, zrh)
	want := `invalid time "2026-02-30" (day out of range); accepted are latest, now, today, yesterday, YYYY-MM-DD, ` +
		`"YYYY-MM-DD HH:MM[:SS]", RFC 3339 like 2026-10-25T02:30:00+02:00, and "N UNIT ago" like 30m ago, 3h ago, 2 days ago, 1 week ago`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant  %s", err, want)
	}
	_, err = Parse("foo", now, zrh)
	if err == nil || !strings.HasPrefix(err.Error(), `invalid time "foo"; accepted are`) {
		t.Errorf("error = %v", err)
	}
}

func TestInstantString(t *testing.T) {
	zrh := zurich(t)
	if got := (Instant{Latest: true}).String(); got != "latest" {
		t.Errorf("latest = %q", got)
	}
	i, err := Parse("2026-11-01", rfc(t, "2026-11-02T00:00:00Z"), zrh)
	if err != nil {
		t.Fatal(err)
	}
	if got := i.String(); got != "2026-11-01 23:59:59 CET" {
		t.Errorf("String() = %q", got)
	}
}

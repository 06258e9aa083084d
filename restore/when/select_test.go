package when

import (
	"errors"
	"math"
	"testing"
	"time"
)

type snap struct {
	id string
	at time.Time
}

func snapTime(s snap) time.Time { return s.at }
func snapID(s snap) string      { return s.id }

func TestSelect(t *testing.T) {
	zrh := zurich(t)
	s1 := snap{"aaaa1111bbbb2222", rfc(t, "2026-10-20T02:00:12+02:00")}
	s2 := snap{"b2", rfc(t, "2026-10-24T02:00:05.734+02:00")}
	s3 := snap{"c3", rfc(t, "2026-10-25T02:30:00+02:00")} // the first 02:30
	s4 := snap{"d4", rfc(t, "2026-10-25T02:30:00+01:00")} // the second 02:30
	s5 := snap{"5555", rfc(t, "2026-10-26T02:00:00+01:00")}
	s6 := snap{"6666", rfc(t, "2026-10-26T01:00:00Z")}    // the same instant as s5
	s7 := snap{"f7", rfc(t, "2026-11-30T02:00:00+01:00")} // after now
	now := rfc(t, "2026-10-27T12:00:00+01:00")

	tests := []struct {
		at   string
		want snap
	}{
		{"latest", s7},
		{"now", s6}, // s5 and s6 tie; the greater ID wins
		{"yesterday", s6},
		{"2026-10-26", s6},
		{"2026-10-26 01:59", s4},
		{"2026-10-25 02:30", s3}, // the earlier 02:30
		{"2026-10-25T02:30:00+01:00", s4},
		{"2026-10-25T02:30:00+02:00", s3},
		{"2026-10-24 02:00:05", s2}, // the listed second includes .734
		{"2026-10-24 02:00", s2},
		{"2026-10-24 02:00:04", s1},
		{"2026-10-24T02:00:05.5+02:00", s1},   // exact, before .734
		{"2026-10-24T02:00:05.734+02:00", s2}, // exactly at s2
		{"2026-10-20", s1},
		{"2026-10-20 02:00:12", s1},
	}
	orders := [][]snap{
		{s1, s2, s3, s4, s5, s6, s7},
		{s7, s6, s5, s4, s3, s2, s1},
		{s4, s6, s1, s7, s3, s5, s2},
	}
	for _, tc := range tests {
		at, err := Parse(tc.at, now, zrh)
		if err != nil {
			t.Fatal(err)
		}
		for _, items := range orders {
			got, err := Select(items, snapTime, snapID, at)
			if err != nil || got != tc.want {
				t.Errorf("Select(at %q) = %s, %v; want %s", tc.at, got.id, err, tc.want.id)
			}
		}
	}
}

func TestSelectNoMatch(t *testing.T) {
	zrh := zurich(t)
	now := rfc(t, "2026-11-05T12:00:00+01:00")
	items := []snap{
		{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", rfc(t, "2026-11-04T01:00:00Z")},
		{"3a4b5c6d7e8f", rfc(t, "2026-11-03T01:00:12Z")},
		{"ffff0000", rfc(t, "2026-11-03T01:00:12Z")}, // same time, greater ID: not the oldest
	}
	at, err := Parse("2026-11-01", now, zrh)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Select(items, snapTime, snapID, at)
	var nm *NoMatchError
	if !errors.As(err, &nm) {
		t.Fatalf("error = %v, want a *NoMatchError", err)
	}
	want := "no snapshot at or before 2026-11-01 23:59:59 CET; the oldest is 3a4b5c6d from 2026-11-03 02:00:12 CET"
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
	if nm.OldestID != "3a4b5c6d7e8f" || !nm.Oldest.Equal(items[1].at) || nm.Oldest.Location() != zrh {
		t.Errorf("NoMatchError = %+v", nm)
	}

	at, err = Parse("2026-10-25 02:30", now, zrh)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Select(items, snapTime, snapID, at)
	want = "no snapshot at or before 2026-10-25 02:30:59 CEST; the oldest is 3a4b5c6d from 2026-11-03 02:00:12 CET"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

func TestSelectEmpty(t *testing.T) {
	for _, at := range []Instant{{Latest: true}, {T: time.Now()}} {
		got, err := Select([]snap(nil), snapTime, snapID, at)
		if !errors.Is(err, ErrNoSnapshots) || got != (snap{}) {
			t.Errorf("Select(nil, %v) = %v, %v; want ErrNoSnapshots", at, got, err)
		}
	}
}

func TestFormatAge(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{12 * time.Second, "12s"},
		{12*time.Second + 900*time.Millisecond, "12s"},
		{45 * time.Minute, "45m"},
		{45*time.Minute + 12*time.Second, "45m 12s"},
		{time.Hour, "1h"},
		{time.Hour + 5*time.Minute, "1h 5m"},
		{time.Hour + 30*time.Second, "1h"},
		{51 * time.Hour, "2d 3h"},
		{48 * time.Hour, "2d"},
		{48*time.Hour + 5*time.Minute, "2d"},
		{400 * 24 * time.Hour, "400d"},
		{-5 * time.Minute, "-5m"},
		{-(26*time.Hour + 30*time.Minute), "-1d 2h"},
		{math.MaxInt64, "106751d 23h"},
		{math.MinInt64, "-106751d 23h"},
	}
	for _, tc := range tests {
		if got := FormatAge(tc.d); got != tc.want {
			t.Errorf("FormatAge(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

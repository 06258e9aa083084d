package retention

import (
	"fmt"
	"reflect"
	"slices"
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

// in is one input snapshot: at is "YYYY-MM-DD HH:MM" in the case's
// location, or RFC 3339 with an explicit offset.
type in struct {
	id   string
	at   string
	tags []string
}

type keptWant struct {
	ID      string
	Summary string
	Reasons []string
}

func k(id, summary string, reasons ...string) keptWant {
	return keptWant{ID: id, Summary: summary, Reasons: reasons}
}

func parseAt(t testing.TB, s string, loc *time.Location) time.Time {
	t.Helper()
	var (
		tm  time.Time
		err error
	)
	if strings.Contains(s, "T") {
		tm, err = time.Parse(time.RFC3339, s)
	} else {
		tm, err = time.ParseInLocation("2006-01-02 15:04", s, loc)
	}
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return tm
}

func snapsOf(t testing.TB, ins []in, loc *time.Location) []Snapshot {
	out := make([]Snapshot, len(ins))
	for i, s := range ins {
		out[i] = Snapshot{ID: s.id, Time: parseAt(t, s.at, loc), Tags: s.tags}
	}
	return out
}

// The restic documentation's example: one backup every Sunday for 12 weeks
// (doc/060_forget.rst), IDs and times as printed there.
var resticDocSundays = []in{
	{id: "0a1f9759", at: "2019-09-01 11:00"},
	{id: "46cfe4d5", at: "2019-09-08 11:00"},
	{id: "f6b1f037", at: "2019-09-15 11:00"},
	{id: "eb430a5d", at: "2019-09-22 11:00"},
	{id: "8cf1cb9a", at: "2019-09-29 11:00"},
	{id: "5d33b116", at: "2019-10-06 11:00"},
	{id: "b9553125", at: "2019-10-13 11:00"},
	{id: "e1a7b58b", at: "2019-10-20 11:00"},
	{id: "8f8018c0", at: "2019-10-27 11:00"},
	{id: "59403279", at: "2019-11-03 11:00"},
	{id: "dfee9fb4", at: "2019-11-10 11:00"},
	{id: "e1ae2f40", at: "2019-11-17 11:00"},
}

var fiveDays = []in{
	{id: "a1", at: "2026-05-01 02:00"},
	{id: "a2", at: "2026-05-02 02:00"},
	{id: "a3", at: "2026-05-03 02:00"},
	{id: "a4", at: "2026-05-04 02:00"},
	{id: "a5", at: "2026-05-05 02:00"},
}

// Days with snapshots: Jan 1 (two), Jan 2, Jan 5, Jan 20 (two), Feb 15.
var withGaps = []in{
	{id: "g1", at: "2026-01-01 01:00"},
	{id: "g2", at: "2026-01-01 13:00"},
	{id: "g3", at: "2026-01-02 02:00"},
	{id: "g4", at: "2026-01-05 02:00"},
	{id: "g5", at: "2026-01-20 01:00"},
	{id: "g6", at: "2026-01-20 13:00"},
	{id: "g7", at: "2026-02-15 02:00"},
}

// ISO weeks: c10..c05 are 2026-W03, c04 W02, c03 W02, c02 2026-W01 (but
// calendar year 2025), c01 2025-W48.
var combo = []in{
	{id: "c01", at: "2025-11-30 02:00"},
	{id: "c02", at: "2025-12-31 02:00"},
	{id: "c03", at: "2026-01-05 02:00"},
	{id: "c04", at: "2026-01-11 02:00"},
	{id: "c05", at: "2026-01-12 02:00"},
	{id: "c06", at: "2026-01-13 02:00"},
	{id: "c07", at: "2026-01-13 14:00"},
	{id: "c08", at: "2026-01-13 14:30"},
	{id: "c09", at: "2026-01-14 02:00"},
	{id: "c10", at: "2026-01-14 02:15"},
}

// Europe/Zurich springs forward on 2026-03-29 at 01:00Z (02:00 CET becomes
// 03:00 CEST) and falls back on 2026-10-25 at 01:00Z (03:00 CEST becomes
// 02:00 CET).
var springForward = []in{
	{id: "s1", at: "2026-03-29T01:59:00+01:00"}, // 00:59Z, 01:59 CET: hour 01
	{id: "s2", at: "2026-03-29T03:10:00+02:00"}, // 01:10Z, 03:10 CEST: hour 03
	{id: "s3", at: "2026-03-29T02:30:00+01:00"}, // 01:30Z, a wall time that never happened: 03:30 CEST, hour 03
	{id: "s4", at: "2026-03-28T23:30:00Z"},      // 00:30 CET on March 29 although March 28 in UTC
	{id: "s5", at: "2026-03-28T22:30:00Z"},      // 23:30 CET on March 28
}

var fallBack = []in{
	{id: "f1", at: "2026-10-24T23:00:00+02:00"}, // 21:00Z, October 24
	{id: "f2", at: "2026-10-25T01:45:00+02:00"}, // 23:45Z on the 24th, 01:45 CEST on the 25th
	{id: "f3", at: "2026-10-25T02:30:00+02:00"}, // 00:30Z, the first 02:30 (CEST)
	{id: "f4", at: "2026-10-25T02:30:00+01:00"}, // 01:30Z, the second 02:30 (CET)
	{id: "f5", at: "2026-10-25T03:05:00+01:00"}, // 02:05Z
}

func TestApply(t *testing.T) {
	zrh := zurich(t)
	tests := []struct {
		name   string
		snaps  []in
		policy Policy
		loc    *time.Location // default Europe/Zurich
		now    string         // default 2027-01-01 00:00
		pinned []string
		keep   []keptWant // newest first
		remove []string   // newest first
	}{
		{
			name:   "restic doc: Sundays, keep-daily 4 keeps the last four Sundays",
			snaps:  resticDocSundays,
			policy: Policy{Daily: 4},
			keep: []keptWant{
				k("e1ae2f40", "daily 1", "daily snapshot"),
				k("dfee9fb4", "daily 2", "daily snapshot"),
				k("59403279", "daily 3", "daily snapshot"),
				k("8f8018c0", "daily 4", "daily snapshot"),
			},
			remove: []string{"e1a7b58b", "b9553125", "5d33b116", "8cf1cb9a", "eb430a5d", "f6b1f037", "46cfe4d5", "0a1f9759"},
		},
		{
			name:   "restic doc: Sundays, keep-weekly 4 is the same, each Sunday is its own ISO week",
			snaps:  resticDocSundays,
			policy: Policy{Weekly: 4},
			keep: []keptWant{
				k("e1ae2f40", "weekly 1", "weekly snapshot"),
				k("dfee9fb4", "weekly 2", "weekly snapshot"),
				k("59403279", "weekly 3", "weekly snapshot"),
				k("8f8018c0", "weekly 4", "weekly snapshot"),
			},
			remove: []string{"e1a7b58b", "b9553125", "5d33b116", "8cf1cb9a", "eb430a5d", "f6b1f037", "46cfe4d5", "0a1f9759"},
		},
		{
			// Nov -> Nov 17, Oct -> Oct 27, Sep -> Sep 29; one count is left
			// when the walk reaches Sep 1, whose month is used: oldest rule.
			name:   "restic doc: Sundays, keep-monthly 4 keeps the oldest as the fourth",
			snaps:  resticDocSundays,
			policy: Policy{Monthly: 4},
			keep: []keptWant{
				k("e1ae2f40", "monthly 1", "monthly snapshot"),
				k("8f8018c0", "monthly 2", "monthly snapshot"),
				k("8cf1cb9a", "monthly 3", "monthly snapshot"),
				k("0a1f9759", "oldest monthly 4", "oldest monthly snapshot"),
			},
			remove: []string{"dfee9fb4", "59403279", "e1a7b58b", "b9553125", "5d33b116", "eb430a5d", "f6b1f037", "46cfe4d5"},
		},
		{
			name:   "restic doc: Sundays, keep-monthly 3 has no count left for the oldest",
			snaps:  resticDocSundays,
			policy: Policy{Monthly: 3},
			keep: []keptWant{
				k("e1ae2f40", "monthly 1", "monthly snapshot"),
				k("8f8018c0", "monthly 2", "monthly snapshot"),
				k("8cf1cb9a", "monthly 3", "monthly snapshot"),
			},
			remove: []string{"dfee9fb4", "59403279", "e1a7b58b", "b9553125", "5d33b116", "eb430a5d", "f6b1f037", "46cfe4d5", "0a1f9759"},
		},
		{
			name:   "keep-last 3",
			snaps:  fiveDays,
			policy: Policy{Last: 3},
			keep: []keptWant{
				k("a5", "last 1", "last snapshot"),
				k("a4", "last 2", "last snapshot"),
				k("a3", "last 3", "last snapshot"),
			},
			remove: []string{"a2", "a1"},
		},
		{
			name:   "keep-last larger than the list keeps all, never as oldest",
			snaps:  fiveDays,
			policy: Policy{Last: 10},
			keep: []keptWant{
				k("a5", "last 1", "last snapshot"),
				k("a4", "last 2", "last snapshot"),
				k("a3", "last 3", "last snapshot"),
				k("a2", "last 4", "last snapshot"),
				k("a1", "last 5", "last snapshot"),
			},
		},
		{
			name:   "keep-last unlimited",
			snaps:  fiveDays,
			policy: Policy{Last: Unlimited},
			keep: []keptWant{
				k("a5", "last 1", "last snapshot"),
				k("a4", "last 2", "last snapshot"),
				k("a3", "last 3", "last snapshot"),
				k("a2", "last 4", "last snapshot"),
				k("a1", "last 5", "last snapshot"),
			},
		},
		{
			// Buckets: Feb 15, Jan 20, Jan 5 (g5 is the older one of Jan 20).
			name:   "keep-daily 3 counts days with snapshots however far apart",
			snaps:  withGaps,
			policy: Policy{Daily: 3},
			keep: []keptWant{
				k("g7", "daily 1", "daily snapshot"),
				k("g6", "daily 2", "daily snapshot"),
				k("g4", "daily 3", "daily snapshot"),
			},
			remove: []string{"g5", "g3", "g2", "g1"},
		},
		{
			name:   "keep-daily 5 uses its last count on Jan 1, nothing left for the oldest",
			snaps:  withGaps,
			policy: Policy{Daily: 5},
			keep: []keptWant{
				k("g7", "daily 1", "daily snapshot"),
				k("g6", "daily 2", "daily snapshot"),
				k("g4", "daily 3", "daily snapshot"),
				k("g3", "daily 4", "daily snapshot"),
				k("g2", "daily 5", "daily snapshot"),
			},
			remove: []string{"g5", "g1"},
		},
		{
			name:   "keep-daily 6: oldest rule keeps g1 although Jan 1 is taken",
			snaps:  withGaps,
			policy: Policy{Daily: 6},
			keep: []keptWant{
				k("g7", "daily 1", "daily snapshot"),
				k("g6", "daily 2", "daily snapshot"),
				k("g4", "daily 3", "daily snapshot"),
				k("g3", "daily 4", "daily snapshot"),
				k("g2", "daily 5", "daily snapshot"),
				k("g1", "oldest daily 6", "oldest daily snapshot"),
			},
			remove: []string{"g5"},
		},
		{
			name:   "keep-daily unlimited keeps every day and, like restic, the oldest",
			snaps:  withGaps,
			policy: Policy{Daily: Unlimited},
			keep: []keptWant{
				k("g7", "daily 1", "daily snapshot"),
				k("g6", "daily 2", "daily snapshot"),
				k("g4", "daily 3", "daily snapshot"),
				k("g3", "daily 4", "daily snapshot"),
				k("g2", "daily 5", "daily snapshot"),
				k("g1", "oldest daily 6", "oldest daily snapshot"),
			},
			remove: []string{"g5"},
		},
		{
			name:   "a count below -1 is read as unlimited, never as off",
			snaps:  withGaps,
			policy: Policy{Daily: -5},
			keep: []keptWant{
				k("g7", "daily 1", "daily snapshot"),
				k("g6", "daily 2", "daily snapshot"),
				k("g4", "daily 3", "daily snapshot"),
				k("g3", "daily 4", "daily snapshot"),
				k("g2", "daily 5", "daily snapshot"),
				k("g1", "oldest daily 6", "oldest daily snapshot"),
			},
			remove: []string{"g5"},
		},
		{
			// Hourly buckets: 14th 02h (c10), 13th 14h (c08), 13th 02h (c06).
			// Daily: 14th (c10), 13th (c08), 12th (c05). Weekly: W03 (c10),
			// W02 (c04). Monthly: Jan (c10), Dec (c02). Yearly: 2026 (c10),
			// 2025 (c02); no count left when c01 is reached.
			name:   "combined rules are ORed, each counting its own buckets",
			snaps:  combo,
			policy: Policy{Last: 2, Hourly: 3, Daily: 3, Weekly: 2, Monthly: 2, Yearly: 2},
			keep: []keptWant{
				k("c10", "last 1, hourly 1, daily 1, weekly 1, monthly 1, yearly 1",
					"last snapshot", "hourly snapshot", "daily snapshot", "weekly snapshot", "monthly snapshot", "yearly snapshot"),
				k("c09", "last 2", "last snapshot"),
				k("c08", "hourly 2, daily 2", "hourly snapshot", "daily snapshot"),
				k("c06", "hourly 3", "hourly snapshot"),
				k("c05", "daily 3", "daily snapshot"),
				k("c04", "weekly 2", "weekly snapshot"),
				k("c02", "monthly 2, yearly 2", "monthly snapshot", "yearly snapshot"),
			},
			remove: []string{"c07", "c03", "c01"},
		},
		{
			name:   "combined rules with a yearly count left for the oldest",
			snaps:  combo,
			policy: Policy{Last: 2, Hourly: 3, Daily: 3, Weekly: 2, Monthly: 2, Yearly: 3},
			keep: []keptWant{
				k("c10", "last 1, hourly 1, daily 1, weekly 1, monthly 1, yearly 1",
					"last snapshot", "hourly snapshot", "daily snapshot", "weekly snapshot", "monthly snapshot", "yearly snapshot"),
				k("c09", "last 2", "last snapshot"),
				k("c08", "hourly 2, daily 2", "hourly snapshot", "daily snapshot"),
				k("c06", "hourly 3", "hourly snapshot"),
				k("c05", "daily 3", "daily snapshot"),
				k("c04", "weekly 2", "weekly snapshot"),
				k("c02", "monthly 2, yearly 2", "monthly snapshot", "yearly snapshot"),
				k("c01", "oldest yearly 3", "oldest yearly snapshot"),
			},
			remove: []string{"c07", "c03"},
		},
		{
			// Latest not in the future: w5 (June 10 02:00); cutoff June 3
			// 02:00; kept strictly after it. w6 is in the future and kept.
			name: "keep-within 7d from the newest snapshot not in the future",
			snaps: []in{
				{id: "w1", at: "2026-06-02 02:00"},
				{id: "w2", at: "2026-06-03 02:00"},
				{id: "w3", at: "2026-06-03 02:01"},
				{id: "w4", at: "2026-06-09 02:00"},
				{id: "w5", at: "2026-06-10 02:00"},
				{id: "w6", at: "2026-06-12 02:00"},
			},
			now:    "2026-06-10 12:00",
			policy: Policy{Within: Duration{Days: 7}},
			keep: []keptWant{
				k("w6", "within 7d", "within 7d"),
				k("w5", "within 7d", "within 7d"),
				k("w4", "within 7d", "within 7d"),
				k("w3", "within 7d", "within 7d"),
			},
			remove: []string{"w2", "w1"},
		},
		{
			name: "keep-within 1w is seven calendar days",
			snaps: []in{
				{id: "w1", at: "2026-06-02 02:00"},
				{id: "w2", at: "2026-06-03 02:00"},
				{id: "w3", at: "2026-06-03 02:01"},
				{id: "w5", at: "2026-06-10 02:00"},
			},
			now:    "2026-06-10 12:00",
			policy: Policy{Within: Duration{Weeks: 1}},
			keep: []keptWant{
				k("w5", "within 1w", "within 1w"),
				k("w3", "within 1w", "within 1w"),
			},
			remove: []string{"w2", "w1"},
		},
		{
			// Latest 12:00 CEST on the spring-forward day = 10:00Z. 1d earlier
			// is 12:00 CET the day before = 11:00Z: d1 (10:30Z) is out, d2
			// (11:30Z) in.
			name: "keep-within 1d across the spring-forward night is 23 hours",
			snaps: []in{
				{id: "d1", at: "2026-03-28 11:30"},
				{id: "d2", at: "2026-03-28 12:30"},
				{id: "d3", at: "2026-03-29 12:00"},
			},
			now:    "2026-03-29 13:00",
			policy: Policy{Within: Duration{Days: 1}},
			keep: []keptWant{
				k("d3", "within 1d", "within 1d"),
				k("d2", "within 1d", "within 1d"),
			},
			remove: []string{"d1"},
		},
		{
			// 24h before 10:00Z is 10:00Z the day before = 11:00 CET.
			name: "keep-within 24h across the same night is 24 hours",
			snaps: []in{
				{id: "d1", at: "2026-03-28 11:30"},
				{id: "d2", at: "2026-03-28 12:30"},
				{id: "d3", at: "2026-03-29 12:00"},
			},
			now:    "2026-03-29 13:00",
			policy: Policy{Within: Duration{Clock: 24 * time.Hour}},
			keep: []keptWant{
				k("d3", "within 24h", "within 24h"),
				k("d2", "within 24h", "within 24h"),
				k("d1", "within 24h", "within 24h"),
			},
		},
		{
			// March 31 minus one month is "February 31", which AddDate
			// normalises to March 3, as restic does.
			name: "keep-within 1m from March 31 reaches back to March 3",
			snaps: []in{
				{id: "m1", at: "2026-03-03 09:59"},
				{id: "m2", at: "2026-03-03 10:00"},
				{id: "m3", at: "2026-03-03 10:01"},
				{id: "m4", at: "2026-03-31 10:00"},
			},
			policy: Policy{Within: Duration{Months: 1}},
			keep: []keptWant{
				k("m4", "within 1m", "within 1m"),
				k("m3", "within 1m", "within 1m"),
			},
			remove: []string{"m2", "m1"},
		},
		{
			name: "keep-within with every snapshot in the future keeps them all",
			snaps: []in{
				{id: "x1", at: "2026-02-01 02:00"},
				{id: "x2", at: "2026-02-02 02:00"},
			},
			now:    "2026-01-01 00:00",
			policy: Policy{Within: Duration{Days: 1}},
			keep: []keptWant{
				k("x2", "within 1d", "within 1d"),
				k("x1", "within 1d", "within 1d"),
			},
		},
		{
			name: "keep-tag: any listed tag, exact case, reasons in policy order, not counted",
			snaps: []in{
				{id: "t1", at: "2026-02-01 02:00", tags: []string{"keep"}},
				{id: "t2", at: "2026-02-02 02:00", tags: []string{"Keep"}},
				{id: "t3", at: "2026-02-03 02:00", tags: []string{"other"}},
				{id: "t4", at: "2026-02-04 02:00", tags: []string{"audit", "keep"}},
			},
			policy: Policy{Last: 1, Tags: []string{"keep", "audit"}},
			keep: []keptWant{
				k("t4", "tag keep, tag audit, last 1", "has tag keep", "has tag audit", "last snapshot"),
				k("t1", "tag keep", "has tag keep"),
			},
			remove: []string{"t3", "t2"},
		},
		{
			// Within 1d of o4: after March 10 02:00, so o3 but not o2.
			// Monthly: March (o5), February (o2); none left for o0 or o1.
			name: "tags, within and counts together",
			snaps: []in{
				{id: "o0", at: "2026-01-05 02:00"},
				{id: "o1", at: "2026-01-10 02:00", tags: []string{"pre-upgrade"}},
				{id: "o2", at: "2026-02-10 02:00"},
				{id: "o3", at: "2026-03-10 02:00"},
				{id: "o4", at: "2026-03-10 03:00"},
				{id: "o5", at: "2026-03-11 02:00"},
			},
			now:    "2026-03-11 12:00",
			policy: Policy{Monthly: 2, Within: Duration{Days: 1}, Tags: []string{"pre-upgrade"}},
			keep: []keptWant{
				k("o5", "within 1d, monthly 1", "within 1d", "monthly snapshot"),
				k("o4", "within 1d", "within 1d"),
				k("o2", "monthly 2", "monthly snapshot"),
				k("o1", "tag pre-upgrade", "has tag pre-upgrade"),
			},
			remove: []string{"o3", "o0"},
		},
		{
			// Zurich hours: s3 03, s2 03, s1 01, s4 00, s5 23 (March 28).
			name:   "spring forward: 02:30+01:00 is 03:30 CEST and shares hour 03 with 03:10",
			snaps:  springForward,
			policy: Policy{Hourly: Unlimited},
			keep: []keptWant{
				k("s3", "hourly 1", "hourly snapshot"),
				k("s1", "hourly 2", "hourly snapshot"),
				k("s4", "hourly 3", "hourly snapshot"),
				k("s5", "hourly 4", "hourly snapshot"),
			},
			remove: []string{"s2"},
		},
		{
			name:   "spring forward: 23:30Z on March 28 is March 29 in Zurich",
			snaps:  springForward,
			policy: Policy{Daily: Unlimited},
			keep: []keptWant{
				k("s3", "daily 1", "daily snapshot"),
				k("s5", "daily 2", "daily snapshot"),
			},
			remove: []string{"s2", "s1", "s4"},
		},
		{
			// In UTC s4 is the newest of March 28; s5 is then the oldest in
			// a used bucket and kept by the oldest rule.
			name:   "spring forward: the same days computed in UTC differ",
			snaps:  springForward,
			loc:    time.UTC,
			policy: Policy{Daily: Unlimited},
			keep: []keptWant{
				k("s3", "daily 1", "daily snapshot"),
				k("s4", "daily 2", "daily snapshot"),
				k("s5", "oldest daily 3", "oldest daily snapshot"),
			},
			remove: []string{"s2", "s1"},
		},
		{
			// Zurich hours: f5 03, f4 02 (CET), f3 02 (CEST), f2 01, f1 23.
			name:   "fall back: both 02:30 share the wall-clock hour 02, the later one is kept",
			snaps:  fallBack,
			policy: Policy{Hourly: Unlimited},
			keep: []keptWant{
				k("f5", "hourly 1", "hourly snapshot"),
				k("f4", "hourly 2", "hourly snapshot"),
				k("f2", "hourly 3", "hourly snapshot"),
				k("f1", "hourly 4", "hourly snapshot"),
			},
			remove: []string{"f3"},
		},
		{
			name:   "fall back: 01:45 CEST belongs to October 25 in Zurich",
			snaps:  fallBack,
			policy: Policy{Daily: 2},
			keep: []keptWant{
				k("f5", "daily 1", "daily snapshot"),
				k("f1", "daily 2", "daily snapshot"),
			},
			remove: []string{"f4", "f3", "f2"},
		},
		{
			name:   "fall back: in UTC 23:45Z is October 24",
			snaps:  fallBack,
			loc:    time.UTC,
			policy: Policy{Daily: 2},
			keep: []keptWant{
				k("f5", "daily 1", "daily snapshot"),
				k("f2", "daily 2", "daily snapshot"),
			},
			remove: []string{"f4", "f3", "f1"},
		},
		{
			name: "month bucket in Zurich: 2026-01-31T23:30Z is February",
			snaps: []in{
				{id: "b1", at: "2026-01-20T10:00:00+01:00"},
				{id: "b2", at: "2026-01-31T23:30:00Z"},
				{id: "b3", at: "2026-02-15T10:00:00+01:00"},
			},
			policy: Policy{Monthly: 2},
			keep: []keptWant{
				k("b3", "monthly 1", "monthly snapshot"),
				k("b1", "monthly 2", "monthly snapshot"),
			},
			remove: []string{"b2"},
		},
		{
			name: "month bucket in UTC: 2026-01-31T23:30Z is January",
			snaps: []in{
				{id: "b1", at: "2026-01-20T10:00:00+01:00"},
				{id: "b2", at: "2026-01-31T23:30:00Z"},
				{id: "b3", at: "2026-02-15T10:00:00+01:00"},
			},
			loc:    time.UTC,
			policy: Policy{Monthly: 2},
			keep: []keptWant{
				k("b3", "monthly 1", "monthly snapshot"),
				k("b2", "monthly 2", "monthly snapshot"),
			},
			remove: []string{"b1"},
		},
		{
			name: "year bucket in Zurich: 2025-12-31T23:30Z is 2026",
			snaps: []in{
				{id: "y1", at: "2025-12-31T12:00:00Z"},
				{id: "y2", at: "2025-12-31T23:30:00Z"},
				{id: "y3", at: "2026-01-02T12:00:00Z"},
			},
			policy: Policy{Yearly: 2},
			keep: []keptWant{
				k("y3", "yearly 1", "yearly snapshot"),
				k("y1", "yearly 2", "yearly snapshot"),
			},
			remove: []string{"y2"},
		},
		{
			// 2025-12-28 is Sunday of 2025-W52; 2025-12-29 (Monday) to
			// 2026-01-04 (Sunday) is 2026-W01; 2026-01-05 starts W02.
			name: "ISO weeks across the new year",
			snaps: []in{
				{id: "i1", at: "2025-12-28 12:00"},
				{id: "i2", at: "2025-12-29 12:00"},
				{id: "i3", at: "2026-01-04 12:00"},
				{id: "i4", at: "2026-01-05 12:00"},
			},
			policy: Policy{Weekly: 3},
			keep: []keptWant{
				k("i4", "weekly 1", "weekly snapshot"),
				k("i3", "weekly 2", "weekly snapshot"),
				k("i1", "weekly 3", "weekly snapshot"),
			},
			remove: []string{"i2"},
		},
		{
			name: "yearly buckets are calendar years, not ISO years",
			snaps: []in{
				{id: "i1", at: "2025-12-28 12:00"},
				{id: "i2", at: "2025-12-29 12:00"},
				{id: "i3", at: "2026-01-04 12:00"},
				{id: "i4", at: "2026-01-05 12:00"},
			},
			policy: Policy{Yearly: 2},
			keep: []keptWant{
				k("i4", "yearly 1", "yearly snapshot"),
				k("i2", "yearly 2", "yearly snapshot"),
			},
			remove: []string{"i3", "i1"},
		},
		{
			name: "identical times: the greater ID counts as newer",
			snaps: []in{
				{id: "b", at: "2026-05-01 02:00"},
				{id: "z", at: "2026-04-30 02:00"},
				{id: "a", at: "2026-05-01 02:00"},
				{id: "c", at: "2026-05-01 02:00"},
			},
			policy: Policy{Last: 2},
			keep: []keptWant{
				k("c", "last 1", "last snapshot"),
				k("b", "last 2", "last snapshot"),
			},
			remove: []string{"a", "z"},
		},
		{
			name: "identical times: one daily bucket, the greater ID represents it",
			snaps: []in{
				{id: "b", at: "2026-05-01 02:00"},
				{id: "z", at: "2026-04-30 02:00"},
				{id: "a", at: "2026-05-01 02:00"},
				{id: "c", at: "2026-05-01 02:00"},
			},
			policy: Policy{Daily: 2},
			keep: []keptWant{
				k("c", "daily 1", "daily snapshot"),
				k("z", "daily 2", "daily snapshot"),
			},
			remove: []string{"b", "a"},
		},
		{
			name:   "pinned snapshots are kept as in use and take no bucket",
			snaps:  fiveDays,
			policy: Policy{Last: 2},
			pinned: []string{"a2", "not-there"},
			keep: []keptWant{
				k("a5", "last 1", "last snapshot"),
				k("a4", "last 2", "last snapshot"),
				k("a2", "in use", "in use"),
			},
			remove: []string{"a3", "a1"},
		},
		{
			name:   "a pinned snapshot that a rule keeps anyway lists both reasons",
			snaps:  fiveDays,
			policy: Policy{Last: 1},
			pinned: []string{"a5"},
			keep: []keptWant{
				k("a5", "in use, last 1", "in use", "last snapshot"),
			},
			remove: []string{"a4", "a3", "a2", "a1"},
		},
		{
			name:   "empty policy keeps everything",
			snaps:  fiveDays,
			pinned: []string{"a3"},
			keep: []keptWant{
				k("a5", "empty policy", "empty policy"),
				k("a4", "empty policy", "empty policy"),
				k("a3", "in use, empty policy", "in use", "empty policy"),
				k("a2", "empty policy", "empty policy"),
				k("a1", "empty policy", "empty policy"),
			},
		},
		{
			name:   "a policy of zeros, 0s and no tags is empty",
			snaps:  fiveDays[:2],
			policy: Policy{Tags: []string{}, Within: Duration{}},
			keep: []keptWant{
				k("a2", "empty policy", "empty policy"),
				k("a1", "empty policy", "empty policy"),
			},
		},
		{
			name:   "a tags-only policy is not empty and removes untagged snapshots",
			snaps:  fiveDays[:2],
			policy: Policy{Tags: []string{"keep"}},
			remove: []string{"a2", "a1"},
		},
		{
			name:   "no snapshots",
			policy: Policy{Last: 3},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := tc.loc
			if loc == nil {
				loc = zrh
			}
			now := "2027-01-01 00:00"
			if tc.now != "" {
				now = tc.now
			}
			keep, remove := Apply(snapsOf(t, tc.snaps, loc), tc.policy, loc, parseAt(t, now, loc), tc.pinned...)
			checkResult(t, keep, remove, tc.keep, tc.remove)
		})
	}
}

func checkResult(t *testing.T, keep []Kept, remove []Snapshot, wantKeep []keptWant, wantRemove []string) {
	t.Helper()
	var gotKeep []keptWant
	for _, kp := range keep {
		gotKeep = append(gotKeep, keptWant{ID: kp.Snapshot.ID, Summary: kp.Summary, Reasons: kp.Reasons})
	}
	var gotRemove []string
	for _, s := range remove {
		gotRemove = append(gotRemove, s.ID)
	}
	if !reflect.DeepEqual(gotKeep, wantKeep) {
		t.Errorf("keep:\n got %s\nwant %s", fmtKept(gotKeep), fmtKept(wantKeep))
	}
	if !slices.Equal(gotRemove, wantRemove) {
		t.Errorf("remove:\n got %q\nwant %q", gotRemove, wantRemove)
	}
}

func fmtKept(ks []keptWant) string {
	var b strings.Builder
	for _, kp := range ks {
		fmt.Fprintf(&b, "\n  %s [%s] %q", kp.ID, kp.Summary, kp.Reasons)
	}
	return b.String()
}

// The documentation's example scaled down: one backup a day at 21:00 from
// 2024-01-01 to Saturday 2026-08-15 (958 snapshots) with --keep-daily 7
// --keep-weekly 5 --keep-monthly 12 --keep-yearly 75.
//
// Daily: August 15 back to August 9. Weekly (newest per ISO week): Aug 15
// (W33) and Aug 9 (W32) are already dailies, then Aug 2, Jul 26, Jul 19.
// Monthly: Aug 15, then the last day of July 2026 back to September 2025.
// Yearly: Aug 15, 2025-12-31, 2024-12-31 and, with 72 counts left, the
// oldest snapshot 2024-01-01 in the already used 2024 bucket.
func TestApplyResticDocDailyForYears(t *testing.T) {
	zrh := zurich(t)
	var snaps []Snapshot
	for i := 0; ; i++ {
		d := time.Date(2024, 1, 1+i, 21, 0, 0, 0, zrh)
		if d.After(time.Date(2026, 8, 15, 21, 0, 0, 0, zrh)) {
			break
		}
		snaps = append(snaps, Snapshot{ID: d.Format("d20060102"), Time: d})
	}
	if len(snaps) != 958 {
		t.Fatalf("generated %d snapshots, want 958", len(snaps))
	}
	keep, remove := Apply(snaps, Policy{Daily: 7, Weekly: 5, Monthly: 12, Yearly: 75}, zrh, time.Date(2026, 8, 15, 22, 0, 0, 0, zrh))
	want := []keptWant{
		k("d20260815", "daily 1, weekly 1, monthly 1, yearly 1", "daily snapshot", "weekly snapshot", "monthly snapshot", "yearly snapshot"),
		k("d20260814", "daily 2", "daily snapshot"),
		k("d20260813", "daily 3", "daily snapshot"),
		k("d20260812", "daily 4", "daily snapshot"),
		k("d20260811", "daily 5", "daily snapshot"),
		k("d20260810", "daily 6", "daily snapshot"),
		k("d20260809", "daily 7, weekly 2", "daily snapshot", "weekly snapshot"),
		k("d20260802", "weekly 3", "weekly snapshot"),
		k("d20260731", "monthly 2", "monthly snapshot"),
		k("d20260726", "weekly 4", "weekly snapshot"),
		k("d20260719", "weekly 5", "weekly snapshot"),
		k("d20260630", "monthly 3", "monthly snapshot"),
		k("d20260531", "monthly 4", "monthly snapshot"),
		k("d20260430", "monthly 5", "monthly snapshot"),
		k("d20260331", "monthly 6", "monthly snapshot"),
		k("d20260228", "monthly 7", "monthly snapshot"),
		k("d20260131", "monthly 8", "monthly snapshot"),
		k("d20251231", "monthly 9, yearly 2", "monthly snapshot", "yearly snapshot"),
		k("d20251130", "monthly 10", "monthly snapshot"),
		k("d20251031", "monthly 11", "monthly snapshot"),
		k("d20250930", "monthly 12", "monthly snapshot"),
		k("d20241231", "yearly 3", "yearly snapshot"),
		k("d20240101", "oldest yearly 4", "oldest yearly snapshot"),
	}
	var gotKeep []keptWant
	for _, kp := range keep {
		gotKeep = append(gotKeep, keptWant{ID: kp.Snapshot.ID, Summary: kp.Summary, Reasons: kp.Reasons})
	}
	if !reflect.DeepEqual(gotKeep, want) {
		t.Errorf("keep:\n got %s\nwant %s", fmtKept(gotKeep), fmtKept(want))
	}
	if len(remove) != 958-23 {
		t.Errorf("removed %d snapshots, want %d", len(remove), 958-23)
	}
	if len(remove) > 0 && (remove[0].ID != "d20260808" || remove[len(remove)-1].ID != "d20240102") {
		t.Errorf("removed from %s to %s, want d20260808 to d20240102", remove[0].ID, remove[len(remove)-1].ID)
	}
}

func TestApplySlots(t *testing.T) {
	zrh := zurich(t)
	keep, _ := Apply(snapsOf(t, withGaps, zrh), Policy{Last: 1, Daily: 6}, zrh, time.Date(2027, 1, 1, 0, 0, 0, 0, zrh))
	if len(keep) != 6 {
		t.Fatalf("kept %d snapshots, want 6", len(keep))
	}
	if want := []Slot{{Rule: "last", N: 1}, {Rule: "daily", N: 1}}; !reflect.DeepEqual(keep[0].Slots, want) {
		t.Errorf("newest slots = %+v, want %+v", keep[0].Slots, want)
	}
	if want := []Slot{{Rule: "daily", N: 6, Oldest: true}}; !reflect.DeepEqual(keep[5].Slots, want) {
		t.Errorf("oldest slots = %+v, want %+v", keep[5].Slots, want)
	}
}

// Input order must not matter, and the input must not be reordered.
func TestApplyIsDeterministicAndLeavesInputAlone(t *testing.T) {
	zrh := zurich(t)
	base := snapsOf(t, []in{
		{id: "b", at: "2026-05-01 02:00"},
		{id: "a", at: "2026-05-01 02:00"},
		{id: "c", at: "2026-05-01 02:00"},
		{id: "z", at: "2026-04-30 02:00"},
		{id: "y", at: "2026-04-30 02:00"},
	}, zrh)
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, zrh)
	p := Policy{Last: 2, Daily: 2}
	for _, perm := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}, {3, 1, 0, 4, 2}} {
		input := make([]Snapshot, len(perm))
		for i, j := range perm {
			input[i] = base[j]
		}
		before := slices.Clone(input)
		keep, remove := Apply(input, p, zrh, now)
		if !reflect.DeepEqual(input, before) {
			t.Errorf("Apply reordered its input %v", perm)
		}
		checkResult(t, keep, remove, []keptWant{
			k("c", "last 1, daily 1", "last snapshot", "daily snapshot"),
			k("b", "last 2", "last snapshot"),
			k("z", "daily 2", "daily snapshot"),
		}, []string{"a", "y"})
	}
}

func TestApplyNilLocationIsLocal(t *testing.T) {
	snaps := []Snapshot{
		{ID: "1", Time: time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local)},
		{ID: "2", Time: time.Date(2026, 1, 1, 13, 0, 0, 0, time.Local)},
	}
	keep, remove := Apply(snaps, Policy{Daily: 1}, nil, time.Date(2027, 1, 1, 0, 0, 0, 0, time.Local))
	checkResult(t, keep, remove, []keptWant{k("2", "daily 1", "daily snapshot")}, []string{"1"})
}

func TestPolicyEmpty(t *testing.T) {
	tests := []struct {
		p    Policy
		want bool
	}{
		{Policy{}, true},
		{Policy{Tags: []string{}}, true},
		{Policy{Within: Duration{}}, true},
		{Policy{Last: 1}, false},
		{Policy{Hourly: Unlimited}, false},
		{Policy{Daily: 1}, false},
		{Policy{Weekly: 1}, false},
		{Policy{Monthly: 1}, false},
		{Policy{Yearly: 1}, false},
		{Policy{Within: Duration{Clock: time.Second}}, false},
		{Policy{Within: Duration{Weeks: 1}}, false},
		{Policy{Tags: []string{"x"}}, false},
	}
	for _, tc := range tests {
		if got := tc.p.Empty(); got != tc.want {
			t.Errorf("%+v.Empty() = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		p       Policy
		wantErr string // "" for valid
	}{
		{Policy{}, ""},
		{Policy{Last: 3, Hourly: 0, Daily: 14, Weekly: 8, Monthly: 12, Yearly: 3}, ""},
		{Policy{Daily: Unlimited, Within: Duration{Days: 7}, Tags: []string{"keep"}}, ""},
		{Policy{Daily: -2}, "daily: -2 is not a count; use a number of buckets, 0 (off) or -1 (unlimited)"},
		{Policy{Last: -3}, "last: -3 is not a count"},
		{Policy{Yearly: -10}, "yearly: -10 is not a count"},
		{Policy{Within: Duration{Days: -1}}, "within: -1d is negative; use a duration like 7d or 36h"},
		{Policy{Within: Duration{Clock: -time.Hour}}, "within: -1h is negative"},
		{Policy{Tags: []string{"ok", " "}}, "tags: an empty tag matches nothing; remove it"},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.p, err)
		case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
			t.Errorf("%+v: error %v, want one starting with %q", tc.p, err, tc.wantErr)
		}
	}
}

func TestPolicyString(t *testing.T) {
	tests := []struct {
		p    Policy
		want string
	}{
		{Policy{}, "keep everything (empty policy)"},
		{Policy{Last: 3, Daily: 14, Weekly: 8, Monthly: 12, Yearly: 3}, "keep last 3, daily 14, weekly 8, monthly 12, yearly 3"},
		{Policy{Hourly: Unlimited, Within: Duration{Days: 7}, Tags: []string{"a", "b"}}, "keep hourly unlimited, within 7d, tag a, tag b"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

package retention

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Unlimited is the count that keeps every bucket, restic's "unlimited".
const Unlimited = -1

// Policy says which snapshots of one environment to keep. The counts are
// restic's --keep-last/hourly/daily/weekly/monthly/yearly: N keeps the newest
// snapshot of each of the N most recent buckets that hold a snapshot, 0
// turns the rule off and Unlimited (-1) keeps every bucket. Within is
// --keep-within and Tags is --keep-tag (one tag per entry; a snapshot with
// any of them is kept). The rules are ORed.
//
// The field tags match the retention block of the configuration file.
type Policy struct {
	Last    int      `yaml:"last" json:"last"`
	Hourly  int      `yaml:"hourly" json:"hourly"`
	Daily   int      `yaml:"daily" json:"daily"`
	Weekly  int      `yaml:"weekly" json:"weekly"`
	Monthly int      `yaml:"monthly" json:"monthly"`
	Yearly  int      `yaml:"yearly" json:"yearly"`
	Within  Duration `yaml:"within" json:"within"`
	Tags    []string `yaml:"tags,omitempty" json:"tags,omitempty"`
}

// Empty reports whether p has no rule at all. Apply keeps every snapshot
// under an empty policy: restic refuses to run one, and a missing retention
// block must never cost an operator their backups.
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 &&
		p.Monthly == 0 && p.Yearly == 0 && p.Within.IsZero() && len(p.Tags) == 0
}

// Validate reports the first value that is not a usable rule, naming its
// configuration key.
func (p Policy) Validate() error {
	for _, c := range p.counts() {
		if c.n < Unlimited {
			return fmt.Errorf("%s: %d is not a count; use a number of buckets, 0 (off) or -1 (unlimited)", c.name, c.n)
		}
	}
	w := p.Within
	if w.Years < 0 || w.Months < 0 || w.Weeks < 0 || w.Days < 0 || w.Clock < 0 {
		return fmt.Errorf("within: %s is negative; use a duration like 7d or 36h", w)
	}
	for _, t := range p.Tags {
		if strings.TrimSpace(t) == "" {
			return fmt.Errorf("tags: an empty tag matches nothing; remove it")
		}
	}
	return nil
}

// String describes p in the configuration's terms for the forget command,
// e.g. "keep last 3, daily 14, weekly unlimited, within 7d, tag keep".
func (p Policy) String() string {
	if p.Empty() {
		return "keep everything (empty policy)"
	}
	var parts []string
	for _, c := range p.counts() {
		switch {
		case c.n > 0:
			parts = append(parts, c.name+" "+strconv.Itoa(c.n))
		case c.n < 0:
			parts = append(parts, c.name+" unlimited")
		}
	}
	if !p.Within.IsZero() {
		parts = append(parts, "within "+p.Within.String())
	}
	for _, t := range p.Tags {
		parts = append(parts, "tag "+t)
	}
	return "keep " + strings.Join(parts, ", ")
}

type namedCount struct {
	name string
	n    int
}

func (p Policy) counts() [6]namedCount {
	return [6]namedCount{
		{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily},
		{"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly},
	}
}

// Snapshot is what Apply needs to know of a snapshot; callers map their own
// types to it and back by ID.
type Snapshot struct {
	ID   string
	Time time.Time
	Tags []string
}

// Kept is a snapshot Apply keeps and why.
type Kept struct {
	Snapshot Snapshot
	// Reasons in a fixed order: "in use", "has tag X", "within 7d", then
	// "last snapshot", "hourly snapshot", "daily snapshot", "weekly
	// snapshot", "monthly snapshot", "yearly snapshot", each possibly as
	// "oldest daily snapshot" and so on; or "empty policy".
	Reasons []string
	// Slots lists the counting rules that kept the snapshot.
	Slots []Slot
	// Summary is the compact form of Reasons for a table column, e.g.
	// "daily 3, weekly 1" or "in use, within 7d, oldest yearly 2".
	Summary string
}

// Slot says which bucket of a counting rule a kept snapshot fills.
type Slot struct {
	// Rule is "last", "hourly", "daily", "weekly", "monthly" or "yearly".
	Rule string
	// N is the ordinal of the bucket among those the rule kept, newest
	// first: daily 3 is the third most recent day that has a snapshot.
	N int
	// Oldest is restic's oldest rule: the oldest snapshot is kept while the
	// count has room, even though its bucket was already used.
	Oldest bool
}

func (s Slot) String() string {
	if s.Oldest {
		return "oldest " + s.Rule + " " + strconv.Itoa(s.N)
	}
	return s.Rule + " " + strconv.Itoa(s.N)
}

// compareNewestFirst orders snapshots newest first. Of two taken at the
// same instant the one with the greater ID counts as newer, so the order is
// exactly the reverse of listing by (time, ID) and does not depend on the
// order the caller passes.
func compareNewestFirst(a, b Snapshot) int {
	if c := b.Time.Compare(a.Time); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

// bucketRule is one counting rule while Apply walks the snapshots.
type bucketRule struct {
	name   string
	left   int // buckets still to keep; negative means unlimited
	key    func(local time.Time, nr int) int
	last   int // key of the bucket kept most recently, -1 before the first
	filled int
}

// Apply splits snaps into the snapshots p keeps and those it removes, both
// newest first, following restic's forget algorithm exactly (see the
// package documentation) except that bucket keys are computed in loc (nil
// means time.Local). now only decides which snapshots are in the future for
// the within rule. Snapshots whose ID is in pinned are always kept with the
// reason "in use"; they take no bucket away from the other rules. snaps is
// not modified.
func Apply(snaps []Snapshot, p Policy, loc *time.Location, now time.Time, pinned ...string) (keep []Kept, remove []Snapshot) {
	if len(snaps) == 0 {
		return nil, nil
	}
	if loc == nil {
		loc = time.Local
	}
	list := slices.Clone(snaps)
	slices.SortStableFunc(list, compareNewestFirst)
	inUse := make(map[string]bool, len(pinned))
	for _, id := range pinned {
		inUse[id] = true
	}

	if p.Empty() {
		keep = make([]Kept, 0, len(list))
		for _, s := range list {
			var k kept
			if inUse[s.ID] {
				k.add("in use", "in use")
			}
			k.add("empty policy", "empty policy")
			keep = append(keep, k.result(s))
		}
		return keep, nil
	}

	var cutoff time.Time
	if !p.Within.IsZero() {
		cutoff = p.Within.Ago(newestNotAfter(list, now).In(loc))
	}
	rules := [6]bucketRule{
		{name: "last", left: p.Last, key: func(_ time.Time, nr int) int { return nr }},
		{name: "hourly", left: p.Hourly, key: func(t time.Time, _ int) int {
			return t.Year()*1000000 + int(t.Month())*10000 + t.Day()*100 + t.Hour()
		}},
		{name: "daily", left: p.Daily, key: func(t time.Time, _ int) int {
			return t.Year()*10000 + int(t.Month())*100 + t.Day()
		}},
		{name: "weekly", left: p.Weekly, key: func(t time.Time, _ int) int {
			y, w := t.ISOWeek()
			return y*100 + w
		}},
		{name: "monthly", left: p.Monthly, key: func(t time.Time, _ int) int {
			return t.Year()*100 + int(t.Month())
		}},
		{name: "yearly", left: p.Yearly, key: func(t time.Time, _ int) int { return t.Year() }},
	}
	for i := range rules {
		rules[i].last = -1
	}

	for nr, s := range list {
		var k kept
		if inUse[s.ID] {
			k.add("in use", "in use")
		}
		for _, tag := range p.Tags {
			if slices.Contains(s.Tags, tag) && !slices.Contains(k.reasons, "has tag "+tag) {
				k.add("has tag "+tag, "tag "+tag)
			}
		}
		if !p.Within.IsZero() && s.Time.After(cutoff) {
			k.add("within "+p.Within.String(), "within "+p.Within.String())
		}
		local := s.Time.In(loc)
		oldest := nr == len(list)-1
		for i := range rules {
			r := &rules[i]
			if r.left == 0 {
				continue
			}
			key := r.key(local, nr)
			if key == r.last && !oldest {
				continue
			}
			r.filled++
			if r.left > 0 {
				r.left--
			}
			slot := Slot{Rule: r.name, N: r.filled, Oldest: key == r.last}
			r.last = key
			reason := r.name + " snapshot"
			if slot.Oldest {
				reason = "oldest " + reason
			}
			k.add(reason, slot.String())
			k.slots = append(k.slots, slot)
		}
		if len(k.reasons) == 0 {
			remove = append(remove, s)
			continue
		}
		keep = append(keep, k.result(s))
	}
	return keep, remove
}

// newestNotAfter returns the time of the newest snapshot not after now, the
// reference point of the within rule; the zero time when all are in the
// future, which keeps every snapshot within any duration, as in restic.
func newestNotAfter(newestFirst []Snapshot, now time.Time) time.Time {
	for _, s := range newestFirst {
		if !s.Time.After(now) {
			return s.Time
		}
	}
	return time.Time{}
}

// kept collects the reasons for one snapshot.
type kept struct {
	reasons, summary []string
	slots            []Slot
}

func (k *kept) add(reason, summary string) {
	k.reasons = append(k.reasons, reason)
	k.summary = append(k.summary, summary)
}

func (k *kept) result(s Snapshot) Kept {
	return Kept{Snapshot: s, Reasons: k.reasons, Slots: k.slots, Summary: strings.Join(k.summary, ", ")}
}

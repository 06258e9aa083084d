package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// CronOptions are the robfig/cron parser options of every schedule in the
// file: the standard 5-field spec plus descriptors (@daily, @every 1h). A
// "CRON_TZ=Zone " prefix is always accepted by the parser.
const CronOptions = cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor

// CronParser returns the parser the configuration validates schedules with;
// the scheduler must use the same one, e.g.
// cron.New(cron.WithParser(config.CronParser()), cron.WithLocation(cfg.Location)).
func CronParser() cron.Parser { return cron.NewParser(CronOptions) }

// Schedule is a validated cron schedule. It implements cron.Schedule; specs
// without CRON_TZ are evaluated in the configured timezone. The zero
// Schedule is "never" (IsZero).
type Schedule struct {
	Spec string // as written

	sched cron.Schedule
	loc   *time.Location
}

// ParseSchedule parses spec with CronParser; loc (nil: time.Local) is the
// zone of specs without CRON_TZ. A spec that can never fire (e.g. "0 0 30 2 *")
// is an error.
func ParseSchedule(spec string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.Local
	}
	sched, err := parseCron(spec)
	if err != nil {
		return Schedule{}, err
	}
	s := Schedule{Spec: spec, sched: sched, loc: loc}
	if s.Next(time.Now()).IsZero() {
		return Schedule{}, fmt.Errorf("%q never fires", spec)
	}
	return s, nil
}

// parseCron is CronParser().Parse with errors that name the bad field and
// without the parser's panic on a CRON_TZ prefix lacking a spec.
func parseCron(spec string) (sched cron.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		if !strings.Contains(spec, " ") {
			return nil, fmt.Errorf("%s has no schedule after the time zone", spec)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("cannot parse: %v", r)
		}
	}()
	sched, err = CronParser().Parse(spec)
	if err == nil {
		return sched, nil
	}
	body := spec
	if strings.HasPrefix(body, "CRON_TZ=") || strings.HasPrefix(body, "TZ=") {
		body = strings.TrimSpace(body[strings.Index(body, " "):])
	}
	if fields := strings.Fields(body); len(fields) == 5 && !strings.HasPrefix(body, "@") {
		names := []string{"minute", "hour", "day-of-month", "month", "day-of-week"}
		opts := []cron.ParseOption{cron.Minute, cron.Hour, cron.Dom, cron.Month, cron.Dow}
		for i, f := range fields {
			if _, ferr := cron.NewParser(opts[i]).Parse(f); ferr != nil {
				return nil, fmt.Errorf("%s field %q: %s", names[i], f, strings.TrimSuffix(ferr.Error(), ": "+f))
			}
		}
	}
	return nil, err
}

// IsZero reports whether s is the zero Schedule (never fires).
func (s Schedule) IsZero() bool { return s.sched == nil }

// Next returns the first activation after t, in t's location; the zero time
// for the zero Schedule.
func (s Schedule) Next(t time.Time) time.Time {
	if s.sched == nil {
		return time.Time{}
	}
	n := s.sched.Next(t.In(s.loc))
	if n.IsZero() {
		return n
	}
	return n.In(t.Location())
}

// String returns the spec.
func (s Schedule) String() string { return s.Spec }

// MarshalText returns the spec.
func (s Schedule) MarshalText() ([]byte, error) { return []byte(s.Spec), nil }

var _ cron.Schedule = Schedule{} // the scheduler can run a Schedule directly

package retention

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want Duration
	}{
		{"", Duration{}},
		{"0", Duration{}},
		{"0s", Duration{}},
		{"7d", Duration{Days: 7}},
		{" 7D ", Duration{Days: 7}},
		{"2w", Duration{Weeks: 2}},
		{"1y", Duration{Years: 1}},
		{"30m", Duration{Months: 30}}, // months, as in restic
		{"2y5m7d3h", Duration{Years: 2, Months: 5, Days: 7, Clock: 3 * time.Hour}},
		{"1y2m3d3h", Duration{Years: 1, Months: 2, Days: 3, Clock: 3 * time.Hour}},
		{"13d23h", Duration{Days: 13, Clock: 23 * time.Hour}},
		{"1y1d1m", Duration{Years: 1, Months: 1, Days: 1}}, // any order, as in restic
		{"1m14d", Duration{Months: 1, Days: 14}},
		{"1w3d", Duration{Weeks: 1, Days: 3}},
		{"1d36h", Duration{Days: 1, Clock: 36 * time.Hour}},
		{"36h", Duration{Clock: 36 * time.Hour}},
		{"1h30m", Duration{Clock: 90 * time.Minute}}, // minutes after an h
		{"5m30s", Duration{Clock: 5*time.Minute + 30*time.Second}},
		{"90s", Duration{Clock: 90 * time.Second}},
		{"500ms", Duration{Clock: 500 * time.Millisecond}},
		{"1.5h", Duration{Clock: 90 * time.Minute}},
		{"2y1h30m", Duration{Years: 2, Clock: 90 * time.Minute}},
		{"1m0h30s", Duration{Months: 1, Clock: 30 * time.Second}},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if err != nil {
			t.Errorf("ParseDuration(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseDuration(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseDurationErrors(t *testing.T) {
	for _, in := range []string{
		"7", "7x", "d", "1.5d", "-1d", "-1h", "1d1d", "1y2y", "3h2d", "1 d",
		"2000000d", "99999999999999999999y", "abc", "7d garbage",
	} {
		_, err := ParseDuration(in)
		if err == nil {
			t.Errorf("ParseDuration(%q) succeeded, want an error", in)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, `"`+in+`"`) || !strings.Contains(msg, "like 2y5m7d3h") || strings.Contains(msg, "\n") {
			t.Errorf("ParseDuration(%q) error %q: want one line naming the value and the accepted forms", in, msg)
		}
	}
	_, err := ParseDuration("7x")
	want := `invalid duration "7x" (cannot read "7x"): use years, months, weeks, days and hours like 2y5m7d3h, 2w or 14d, or a Go duration like 36h, 90s or 0s`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant  %s", err, want)
	}
}

func TestDurationStringRoundTrip(t *testing.T) {
	tests := []struct {
		d    Duration
		want string
	}{
		{Duration{}, "0s"},
		{Duration{Days: 7}, "7d"},
		{Duration{Weeks: 2}, "2w"},
		{Duration{Months: 30}, "30m"},
		{Duration{Years: 2, Months: 5, Days: 7, Clock: 3 * time.Hour}, "2y5m7d3h"},
		{Duration{Years: 1, Months: 1, Weeks: 1, Days: 1, Clock: time.Hour}, "1y1m1w1d1h"},
		{Duration{Clock: 36 * time.Hour}, "36h"},
		{Duration{Clock: 90 * time.Minute}, "1h30m0s"},
		{Duration{Clock: 5 * time.Minute}, "5m0s"},
		{Duration{Clock: 1500 * time.Millisecond}, "1.5s"},
		{Duration{Days: 1, Clock: 90 * time.Minute}, "1d1h30m0s"},
		{Duration{Months: 1, Clock: 30 * time.Second}, "1m0h30s"},
		{Duration{Months: 5, Clock: 5 * time.Minute}, "5m0h5m0s"},
	}
	for _, tc := range tests {
		s := tc.d.String()
		if s != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.d, s, tc.want)
		}
		back, err := ParseDuration(s)
		if err != nil || back != tc.d {
			t.Errorf("ParseDuration(%q) = %+v, %v; want %+v", s, back, err, tc.d)
		}
	}
}

func TestDurationAgo(t *testing.T) {
	zrh := zurich(t)
	at := func(y int, mo time.Month, d, h, mi int) time.Time { return time.Date(y, mo, d, h, mi, 0, 0, zrh) }
	tests := []struct {
		d    Duration
		from time.Time
		want time.Time
	}{
		// 12:00 CEST on the spring-forward day minus a calendar day is 12:00
		// CET: 23 hours; minus 24h is 11:00 CET.
		{Duration{Days: 1}, at(2026, 3, 29, 12, 0), at(2026, 3, 28, 12, 0)},
		{Duration{Clock: 24 * time.Hour}, at(2026, 3, 29, 12, 0), at(2026, 3, 28, 11, 0)},
		// Across the fall-back night a week is 169 hours.
		// (Oct 31 12:00 CET = 11:00Z, Oct 24 12:00 CEST = 10:00Z.)
		{Duration{Weeks: 1}, at(2026, 10, 31, 12, 0), at(2026, 10, 24, 12, 0)},
		{Duration{Clock: 168 * time.Hour}, at(2026, 10, 31, 12, 0), at(2026, 10, 24, 13, 0)},
		// February 31 and February 29, 2023 normalise forwards.
		{Duration{Months: 1}, at(2026, 3, 31, 10, 0), at(2026, 3, 3, 10, 0)},
		{Duration{Years: 1}, at(2024, 2, 29, 10, 0), at(2023, 3, 1, 10, 0)},
		// Calendar part first, then the clock part.
		{Duration{Years: 2, Months: 5, Days: 7, Clock: 3 * time.Hour}, at(2026, 8, 15, 12, 0), at(2024, 3, 8, 9, 0)},
		{Duration{}, at(2026, 8, 15, 12, 0), at(2026, 8, 15, 12, 0)},
	}
	for _, tc := range tests {
		if got := tc.d.Ago(tc.from); !got.Equal(tc.want) {
			t.Errorf("%v.Ago(%v) = %v, want %v", tc.d, tc.from, got, tc.want)
		}
	}
}

type config struct {
	Retention Policy `yaml:"retention"`
}

func decodeStrict(src string) (config, error) {
	var c config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	return c, err
}

func TestPolicyYAML(t *testing.T) {
	tests := []struct {
		src  string
		want Policy
	}{
		{ // the contract's defaults
			"retention: {last: 3, hourly: 0, daily: 14, weekly: 8, monthly: 12, yearly: 3, within: 0s}\n",
			Policy{Last: 3, Daily: 14, Weekly: 8, Monthly: 12, Yearly: 3},
		},
		{
			"retention:\n  daily: -1\n  within: 2y5m7d3h\n  tags: [pre-upgrade, keep]\n",
			Policy{Daily: Unlimited, Within: Duration{Years: 2, Months: 5, Days: 7, Clock: 3 * time.Hour}, Tags: []string{"pre-upgrade", "keep"}},
		},
		{"retention:\n  within: 0\n", Policy{}},
		{"retention:\n  within: ~\n", Policy{}},
		{"retention:\n  within: \"36h\"\n", Policy{Within: Duration{Clock: 36 * time.Hour}}},
	}
	for _, tc := range tests {
		c, err := decodeStrict(tc.src)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if !reflect.DeepEqual(c.Retention, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.src, c.Retention, tc.want)
		}
	}
}

func TestPolicyYAMLErrors(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{"retention:\n  daily: 7\n  within: 7x\n", `line 3: invalid duration "7x"`},
		{"retention:\n  within: [1d]\n", "line 2: a duration must be a single value"},
		// Unknown keys inside the block are still caught by a strict decoder.
		{"retention:\n  dayly: 7\n", "line 2: field dayly not found"},
	}
	for _, tc := range tests {
		_, err := decodeStrict(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.src, err, tc.want)
		}
	}
}

func TestPolicyMarshal(t *testing.T) {
	p := Policy{Daily: 14, Within: Duration{Days: 7}, Tags: []string{"keep"}}
	y, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), "within: 7d\n") {
		t.Errorf("YAML %q lacks within: 7d", y)
	}
	j, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"last":0,"hourly":0,"daily":14,"weekly":0,"monthly":0,"yearly":0,"within":"7d","tags":["keep"]}`
	if string(j) != want {
		t.Errorf("JSON %s, want %s", j, want)
	}
	var back Policy
	if err := json.Unmarshal(j, &back); err != nil || !reflect.DeepEqual(back, p) {
		t.Errorf("JSON round trip = %+v, %v; want %+v", back, err, p)
	}
	var c config
	if err := yaml.Unmarshal(append([]byte("retention:\n"), indent(y)...), &c); err != nil || !reflect.DeepEqual(c.Retention, p) {
		t.Errorf("YAML round trip = %+v, %v; want %+v", c.Retention, err, p)
	}
}

func indent(b []byte) []byte {
	return []byte("  " + strings.ReplaceAll(strings.TrimRight(string(b), "\n"), "\n", "\n  ") + "\n")
}

package status

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Munin graph names.
const (
	MuninAgeGraph  = "mbackup_age"
	MuninSizeGraph = "mbackup_size"
)

// MuninFields maps environment names to Munin field names: letters,
// digits and '_', not starting with a digit, unique.
func MuninFields(envs []string) map[string]string {
	out := make(map[string]string, len(envs))
	used := map[string]bool{}
	for _, name := range envs {
		f := muninField(name)
		base := f
		for i := 2; used[f]; i++ {
			f = base + "_" + strconv.Itoa(i)
		}
		used[f] = true
		out[name] = f
	}
	return out
}

func muninField(name string) string {
	var b strings.Builder
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
			b.WriteRune(c)
		case c >= '0' && c <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// MuninThresholds returns the warning and critical backup ages of an
// environment: overdue (period plus margin) and one more period. Zero for
// an unscheduled environment.
func MuninThresholds(e Env, margin time.Duration) (warning, critical time.Duration) {
	if e.Period <= 0 {
		return 0, 0
	}
	if margin <= 0 {
		margin = DefaultMargin
	}
	return e.Period + margin, 2*e.Period + margin
}

// WriteMuninConfig writes the plugin's `config` output: two graphs (backup
// age in hours with warning and critical levels, and the size of the
// newest snapshot).
func WriteMuninConfig(w io.Writer, envs []Env, margin time.Duration) error {
	names := make([]string, len(envs))
	for i, e := range envs {
		names[i] = e.Env
	}
	fields := MuninFields(names)
	var b strings.Builder
	b.WriteString("multigraph " + MuninAgeGraph + "\n")
	b.WriteString("graph_title Moodle backups: age of the last backup\n")
	b.WriteString("graph_vlabel hours\n")
	b.WriteString("graph_args --base 1000 -l 0\n")
	b.WriteString("graph_category backup\n")
	b.WriteString("graph_info Hours since the newest successful snapshot of each environment (mbackup).\n")
	for _, e := range envs {
		f := fields[e.Env]
		fmt.Fprintf(&b, "%s.label %s\n", f, e.Env)
		fmt.Fprintf(&b, "%s.min 0\n", f)
		if warn, crit := MuninThresholds(e, margin); warn > 0 {
			fmt.Fprintf(&b, "%s.warning %s\n", f, hours(warn))
			fmt.Fprintf(&b, "%s.critical %s\n", f, hours(crit))
			fmt.Fprintf(&b, "%s.info schedule %s\n", f, e.Schedule)
		}
	}
	b.WriteString("multigraph " + MuninSizeGraph + "\n")
	b.WriteString("graph_title Moodle backups: size of the last backup\n")
	b.WriteString("graph_vlabel bytes\n")
	b.WriteString("graph_args --base 1024 -l 0\n")
	b.WriteString("graph_category backup\n")
	b.WriteString("graph_info Database dump plus moodledata of the newest snapshot of each environment, before deduplication.\n")
	for _, e := range envs {
		f := fields[e.Env]
		fmt.Fprintf(&b, "%s.label %s\n", f, e.Env)
		fmt.Fprintf(&b, "%s.min 0\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMuninValues writes the plugin's fetch output; U (unknown) for an
// environment never backed up.
func WriteMuninValues(w io.Writer, envs []Env) error {
	names := make([]string, len(envs))
	for i, e := range envs {
		names[i] = e.Env
	}
	fields := MuninFields(names)
	var b strings.Builder
	b.WriteString("multigraph " + MuninAgeGraph + "\n")
	for _, e := range envs {
		v := "U"
		if e.LastSuccess != nil {
			v = hours(max(e.Age, 0))
		}
		fmt.Fprintf(&b, "%s.value %s\n", fields[e.Env], v)
	}
	b.WriteString("multigraph " + MuninSizeGraph + "\n")
	for _, e := range envs {
		v := "U"
		if e.LastSnapshot != nil {
			v = strconv.FormatInt(e.SizeBytes, 10)
		}
		fmt.Fprintf(&b, "%s.value %s\n", fields[e.Env], v)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func hours(d time.Duration) string {
	return strconv.FormatFloat(d.Hours(), 'f', 2, 64)
}

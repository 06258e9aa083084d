package config

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks the yaml.Node tree, so that every problem can name its line
// and key path, and collects every problem instead of stopping at the first.
type decoder struct {
	file   string // as given to Load, for messages
	dir    string // absolute folder of the file: base of relative paths
	lookup func(string) (string, bool)
	errs   []*Error

	merging map[*yaml.Node]bool // mappings being merged, to stop "<<" cycles
	keys    int                 // keys visited, to stop alias bombs
}

// maxKeys bounds the keys visited through aliases and merges; a real
// configuration has a few hundred.
const maxKeys = 100_000

func (d *decoder) fail(line int, key, fix, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...), Fix: fix})
}

// sorted returns the collected errors ordered by line; errors without a
// line come last.
func (d *decoder) sorted() []*Error {
	sort.SliceStable(d.errs, func(i, j int) bool {
		li, lj := d.errs[i].Line, d.errs[j].Line
		if li == 0 || lj == 0 {
			return lj == 0 && li != 0
		}
		return li < lj
	})
	return d.errs
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func deref(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode && depth < 100; depth++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// entry is one key of a mapping after merge keys ("<<: *anchor") are applied.
type entry struct {
	name string
	k, v *yaml.Node
}

// entries lists the keys of mapping n. Duplicate keys are errors; keys
// brought in by "<<" merges yield to the mapping's own keys, as YAML says.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	var own, merged []entry
	seen := map[string]int{}
	if d.keys += len(n.Content) / 2; d.keys > maxKeys {
		if d.keys-len(n.Content)/2 <= maxKeys {
			d.fail(n.Line, path, "write the settings out instead of nesting aliases", "too many keys through aliases and merges (more than %d)", maxKeys)
		}
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(v, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "write keys as plain words", "a key must be a plain word, not %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, join(path, k.Value), "remove one of them", "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, entry{k.Value, k, v})
	}
	for _, e := range merged {
		if _, ok := seen[e.name]; !ok {
			seen[e.name] = e.k.Line
			own = append(own, e)
		}
	}
	return own
}

func (d *decoder) mergeSources(v *yaml.Node, path string) []entry {
	v = deref(v)
	switch v.Kind {
	case yaml.MappingNode:
		if d.merging[v] { // an anchor merged into itself
			d.fail(v.Line, path, "merge a different anchor", "<< merges a mapping into itself")
			return nil
		}
		if d.merging == nil {
			d.merging = map[*yaml.Node]bool{}
		}
		d.merging[v] = true
		defer delete(d.merging, v)
		return d.entries(v, path)
	case yaml.SequenceNode:
		var out []entry
		for _, item := range v.Content {
			out = append(out, d.mergeSources(item, path)...)
		}
		return out
	}
	d.fail(v.Line, path, "merge an anchored mapping: <<: *name", "<< must merge a mapping, not %s", describe(v))
	return nil
}

// handler decodes the value v of key (full path) written at line; v is
// dereferenced and never null. line is the key's line, which is where
// "missing" errors about a mapping value belong.
type handler func(v *yaml.Node, key string, line int)

// dispatch calls the handler of every entry; unknown keys are errors, null
// values count as absent.
func (d *decoder) dispatch(es []entry, path string, hs map[string]handler) {
	for _, e := range es {
		key := join(path, e.name)
		h, ok := hs[e.name]
		if !ok {
			d.fail(e.k.Line, key, suggest(e.name, hs), "unknown key")
			continue
		}
		if isNull(e.v) {
			continue
		}
		h(deref(e.v), key, e.k.Line)
	}
}

// fields decodes mapping v with hs; anything but a mapping is an error.
func (d *decoder) fields(v *yaml.Node, key string, hs map[string]handler) bool {
	if !d.isKind(v, key, yaml.MappingNode) {
		return false
	}
	d.dispatch(d.entries(v, key), key, hs)
	return true
}

// suggest proposes the closest known key, or lists them all.
func suggest(name string, hs map[string]handler) string {
	known := make([]string, 0, len(hs))
	for k := range hs {
		known = append(known, k)
	}
	sort.Strings(known)
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(name, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "known keys here: " + strings.Join(known, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return fmt.Sprintf("%q", v)
	}
	return "an unsupported node"
}

func (d *decoder) isKind(v *yaml.Node, key string, want yaml.Kind) bool {
	if v.Kind == want {
		return true
	}
	var what, fix string
	switch want {
	case yaml.MappingNode:
		what, fix = "a mapping", "put indented \"key: value\" lines under it"
	case yaml.SequenceNode:
		what, fix = "a list", "write a list such as [a, b]"
	default:
		what, fix = "a single value", "write one value, not a list or mapping"
	}
	d.fail(v.Line, key, fix, "expected %s, got %s", what, describe(v))
	return false
}

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${VAR} with the variable's value; $${ is a literal ${.
// Any other $ is kept as is. An unset variable is an error.
func (d *decoder) expand(s string, line int, key string) (string, bool) {
	if !strings.Contains(s, "${") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				d.fail(line, key, "close it with } (write $${ for a literal ${)", "unterminated ${ in value")
				return "", false
			}
			name := s[i+2 : i+2+end]
			if !varNameRE.MatchString(name) {
				d.fail(line, key, "use ${NAME} with letters, digits and _ (write $${ for a literal ${)", "bad variable name %q in ${...}", name)
				return "", false
			}
			val, ok := d.lookup(name)
			if !ok {
				d.fail(line, key, fmt.Sprintf("export %s before running mbackup (write $${ for a literal ${)", name),
					"environment variable %s is not set (used as ${%s})", name, name)
				return "", false
			}
			b.WriteString(val)
			i += 2 + end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), true
}

// str decodes a scalar with ${VAR} expansion.
func (d *decoder) str(v *yaml.Node, key string) (string, bool) {
	if !d.isKind(v, key, yaml.ScalarNode) {
		return "", false
	}
	return d.expand(v.Value, v.Line, key)
}

// required decodes a scalar that must not be empty after expansion.
func (d *decoder) required(v *yaml.Node, key, fix string) (string, bool) {
	s, ok := d.str(v, key)
	if ok && strings.TrimSpace(s) == "" {
		d.fail(v.Line, key, fix, "is empty")
		return "", false
	}
	return strings.TrimSpace(s), ok
}

// path decodes a non-empty filesystem path, made absolute against the
// configuration file's folder.
func (d *decoder) path(v *yaml.Node, key string) (string, bool) {
	s, ok := d.required(v, key, "give a path (relative paths are relative to the configuration file)")
	if !ok {
		return "", false
	}
	return absPath(s, d.dir), true
}

func (d *decoder) integer(v *yaml.Node, key string, minimum int) (int, bool) {
	s, ok := d.str(v, key)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		d.fail(v.Line, key, "write a whole number", "expected a whole number, got %q", s)
		return 0, false
	}
	if n < minimum {
		d.fail(v.Line, key, fmt.Sprintf("use %d or more", minimum), "%d is below the minimum %d", n, minimum)
		return 0, false
	}
	return n, true
}

func (d *decoder) boolean(v *yaml.Node, key string) (bool, bool) {
	s, ok := d.str(v, key)
	if !ok {
		return false, false
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	d.fail(v.Line, key, "write true or false", "expected true or false, got %q", s)
	return false, false
}

// duration decodes a Go duration (5m, 24h, 0s) that is not negative.
func (d *decoder) duration(v *yaml.Node, key string) (time.Duration, bool) {
	s, ok := d.str(v, key)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || dur < 0 {
		d.fail(v.Line, key, "write a duration such as 30s, 5m or 24h", "bad duration %q", s)
		return 0, false
	}
	return dur, true
}

func (d *decoder) percent(v *yaml.Node, key string, minExclusive bool) (float64, bool) {
	s, ok := d.str(v, key)
	if !ok {
		return 0, false
	}
	p, err := ParsePercent(s)
	if err != nil {
		d.fail(v.Line, key, "write a percentage such as 5%", "%v", err)
		return 0, false
	}
	if p < 0 || p > 100 || (minExclusive && p == 0) {
		lo := "0%"
		if minExclusive {
			lo = "above 0%"
		}
		d.fail(v.Line, key, "use a value from "+lo+" to 100%", "%s is out of range", s)
		return 0, false
	}
	return p, true
}

// list decodes a list of non-empty scalars.
func (d *decoder) list(v *yaml.Node, key string) ([]string, bool) {
	if !d.isKind(v, key, yaml.SequenceNode) {
		return nil, false
	}
	out := make([]string, 0, len(v.Content))
	good := true
	for i, item := range v.Content {
		item = deref(item)
		ikey := fmt.Sprintf("%s[%d]", key, i)
		s, ok := d.required(item, ikey, "remove the empty item")
		if !ok {
			good = false
			continue
		}
		out = append(out, s)
	}
	return out, good
}

// schedule decodes a cron spec; "off" (or "") is an explicit "not
// scheduled", returned as the zero Schedule.
func (d *decoder) schedule(v *yaml.Node, key string, loc *time.Location) (Schedule, bool) {
	s, ok := d.str(v, key)
	if !ok {
		return Schedule{}, false
	}
	s = strings.TrimSpace(s)
	if s == "" || s == "off" {
		return Schedule{}, true
	}
	sched, err := ParseSchedule(s, loc)
	if err != nil {
		d.fail(v.Line, key, `use robfig/cron syntax, e.g. "0 2 * * *", @daily or "@every 6h"`, "bad cron spec %q: %v", s, err)
		return Schedule{}, false
	}
	return sched, true
}

func (d *decoder) secretFile(v *yaml.Node, key string, src *SecretSource) {
	if p, ok := d.path(v, key); ok {
		src.File, src.line, src.key = p, v.Line, key
	}
}

func (d *decoder) secretEnv(v *yaml.Node, key string, src *SecretSource) {
	s, ok := d.required(v, key, "name the environment variable, e.g. MBACKUP_PASSWORD")
	if !ok {
		return
	}
	if !varNameRE.MatchString(s) {
		// Never echo s: it may be the secret itself, put here by mistake.
		d.fail(v.Line, key, "give the variable's name (letters, digits, _), not its value", "is not an environment variable name")
		return
	}
	src.Env, src.line, src.key = s, v.Line, key
}

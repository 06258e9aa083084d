package staging

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Markers around the lines RewriteConfigPHP adds.
const (
	blockStart = "// mbackup: staging overrides, written by `mbackup staging refresh` and\n" +
		"// rewritten on every refresh. They keep this copy off production: its own\n" +
		"// database and URL, no e-mail to real people, no scheduled tasks besides\n" +
		"// housekeeping (config.php settings win over the database).\n"
	blockEnd = "// end of mbackup staging overrides\n"
)

// override is one $CFG setting the rewriter manages.
type override struct {
	name   string // as in phpAssign.name
	value  string // PHP expression
	show   string // for the change list; "" means the value is secret
	add    bool   // add when missing (else only replace an existing one)
	inline string // for dboptions[KEY]: the array item to replace in place
}

// overrides lists what RewriteConfigPHP sets, in the order it adds them.
func (o Settings) overrides() []override {
	str := func(name, v string, add bool) override {
		return override{name: name, value: phpString(v), show: phpString(v), add: add}
	}
	lit := func(name, v string, add bool) override {
		return override{name: name, value: v, show: v, add: add}
	}
	list := []override{
		str("wwwroot", o.WWWRoot, true),
		str("dbhost", o.DBHost, true),
		str("dbname", o.DBName, true),
	}
	if o.DBUser != "" {
		list = append(list, str("dbuser", o.DBUser, true))
	}
	if o.DBPass != "" {
		list = append(list, override{name: "dbpass", value: phpString(o.DBPass), add: true})
	}
	if o.DBPort != 0 {
		p := strconv.Itoa(o.DBPort)
		list = append(list, override{name: "dboptions[dbport]", value: p, show: p, add: true, inline: "dbport"})
	}
	if o.DataRoot != "" {
		list = append(list, str("dataroot", o.DataRoot, true))
	}
	if o.DivertEmailsTo == "" {
		list = append(list, lit("noemailever", "true", true))
	} else {
		list = append(list,
			lit("noemailever", "false", false),
			str("divertallemailsto", o.DivertEmailsTo, true),
			str("divertallemailsexcept", "", true))
	}
	list = append(list,
		lit("site_is_public", "false", true),
		lit("preventscheduledtaskchanges", "true", true),
		override{name: "scheduled_tasks", value: o.scheduledTasksPHP(), add: true,
			show: fmt.Sprintf("every task disabled except %d housekeeping tasks", len(o.allowedTasks()))},
	)
	return list
}

// scheduledTasksPHP is the $CFG->scheduled_tasks override: Moodle looks
// for an exact class name first and then for the first matching wildcard,
// so the allowed tasks get an entry without settings (they keep the
// database's state) and "*" disables the rest. Moodle marks overridden
// tasks customised, so an upgrade on the copy cannot re-enable them.
func (o Settings) scheduledTasksPHP() string {
	var b strings.Builder
	b.WriteString("[\n")
	for _, t := range o.allowedTasks() {
		fmt.Fprintf(&b, "    %s => [],\n", phpString(t))
	}
	b.WriteString("    '*' => ['disabled' => 1],\n]")
	return b.String()
}

// edit replaces src[start:end].
type edit struct {
	start, end int
	text       string
}

// RewriteConfigPHP returns config.php src rewritten for the copy o
// describes: wwwroot and the database settings point at the copy, e-mail
// is off (noemailever) or diverted (divertallemailsto), and
// site_is_public, preventscheduledtaskchanges and scheduled_tasks (every
// task disabled but o's allow-list) are set. Existing assignments are
// replaced where they are, whatever their quoting and spacing; missing
// ones are added in a block marked as mbackup's just before the require
// of lib/setup.php (or at the end). Commented-out settings do not count.
// Running it again on its output changes nothing.
//
// changes lists every change, one line each; the database password is
// never shown.
func RewriteConfigPHP(src []byte, o Settings) (out []byte, changes []string, err error) {
	if err := o.validateConfig(); err != nil {
		return nil, nil, fmt.Errorf("rewrite config.php: %w", err)
	}
	f, err := parseConfigPHP(src)
	if err != nil {
		return nil, nil, fmt.Errorf("rewrite config.php: %w", err)
	}
	var (
		edits []edit
		added []override
	)
	for _, ov := range o.overrides() {
		found := false
		for _, a := range f.assigns {
			if a.name == ov.name {
				found = true
				edits, changes = replaceValue(f, edits, changes, a.valStart, a.valEnd, ov)
			}
		}
		if ov.inline != "" {
			base, _, _ := strings.Cut(ov.name, "[")
			for _, a := range f.assigns {
				if a.name != base {
					continue
				}
				if s, e, ok := f.arrayItem(a.valStart, a.valEnd, ov.inline); ok {
					found = true
					edits, changes = replaceValue(f, edits, changes, s, e, ov)
				}
			}
		}
		if !found && ov.add {
			added = append(added, ov)
		}
	}
	if len(added) > 0 {
		var b strings.Builder
		b.WriteString(blockStart)
		for _, ov := range added {
			fmt.Fprintf(&b, "%s = %s;\n", cfgRef(ov.name), ov.value)
			changes = append(changes, fmt.Sprintf("config.php: added %s = %s", cfgRef(ov.name), display(ov)))
		}
		b.WriteString(blockEnd)
		at, text := len(src), b.String()
		switch {
		case f.setup >= 0:
			at = lineStart(src, f.setup)
			text += "\n"
		case f.close >= 0:
			at = lineStart(src, f.close)
			text = "\n" + text
		default:
			if len(src) > 0 && src[len(src)-1] != '\n' {
				text = "\n" + text
			}
			text = "\n" + text
		}
		edits = append(edits, edit{at, at, text})
	}
	return applyEdits(src, edits), changes, nil
}

func replaceValue(f *phpFile, edits []edit, changes []string, start, end int, ov override) ([]edit, []string) {
	old := string(f.src[start:end])
	if old == ov.value {
		return edits, changes
	}
	edits = append(edits, edit{start, end, ov.value})
	if ov.show == "" {
		return edits, append(changes, fmt.Sprintf("config.php: replaced %s (value hidden)", cfgRef(ov.name)))
	}
	return edits, append(changes, fmt.Sprintf("config.php: set %s = %s (was %s)", cfgRef(ov.name), display(ov), shorten(old)))
}

func display(ov override) string {
	if ov.show == "" {
		return "[hidden]"
	}
	return ov.show
}

// cfgRef renders an override name as PHP: dboptions[dbport] becomes
// $CFG->dboptions['dbport'].
func cfgRef(name string) string {
	if base, key, ok := strings.Cut(name, "["); ok {
		return "$CFG->" + base + "[" + phpString(strings.TrimSuffix(key, "]")) + "]"
	}
	return "$CFG->" + name
}

// shorten folds a PHP expression onto one line of at most 80 bytes.
func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func lineStart(src []byte, at int) int {
	for at > 0 && src[at-1] != '\n' {
		at--
	}
	return at
}

func applyEdits(src []byte, edits []edit) []byte {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	out := make([]byte, 0, len(src)+1024)
	pos := 0
	for _, e := range edits {
		out = append(out, src[pos:e.start]...)
		out = append(out, e.text...)
		pos = e.end
	}
	return append(out, src[pos:]...)
}

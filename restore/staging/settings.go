package staging

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// DefaultAllowedTasks are the scheduled tasks a sanitized copy keeps
// running: housekeeping that only tidies the copy's own database and
// moodledata and talks to nothing outside it. Everything else (mail
// digests, LDAP and SIS syncs, inbound mail pickup, registration and
// update checks, automated backups, analytics...) is disabled.
func DefaultAllowedTasks() []string {
	return []string{
		`\core\task\session_cleanup_task`,
		`\core\task\cache_cleanup_task`,
		`\core\task\cache_cron_task`,
		`\core\task\file_temp_cleanup_task`,
		`\core\task\messaging_cleanup_task`,
		`\core\task\context_cleanup_task`,
		`\core\task\backup_cleanup_task`,
		`\core\task\task_log_cleanup_task`,
		`\core\task\password_reset_cleanup_task`,
	}
}

// Settings describe the copy a config.php and a database are made safe
// for: where the copy's Moodle lives and how it reaches its own database.
type Settings struct {
	// WWWRoot is the copy's URL, never production's.
	WWWRoot string
	// DBHost, DBPort, DBName and DBUser are the copy's database as
	// Moodle on the copy reaches it. DBPort 0 leaves the port alone,
	// DBUser "" the user.
	DBHost string
	DBPort int
	DBName string
	DBUser string
	// DBPass replaces $CFG->dbpass when set; empty keeps the clone's
	// (a Jelastic clone's database server has production's roles). It is
	// never printed.
	DBPass string
	// DataRoot replaces $CFG->dataroot when set. A Jelastic clone keeps
	// the same container path, so it is only needed when the path names
	// production's folder as seen from the copy.
	DataRoot string
	// DivertEmailsTo diverts every e-mail to this address
	// (divertallemailsto); empty means no e-mail at all (noemailever).
	DivertEmailsTo string
	// AllowedTasks are the scheduled tasks left enabled; nil means
	// DefaultAllowedTasks. Class names as Moodle stores them, with or
	// without the leading backslash.
	AllowedTasks []string
	// Prefix is the Moodle table prefix (default "mdl_").
	Prefix string
}

var (
	prefixRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,15}$`)
	taskRe   = regexp.MustCompile(`^\\?[A-Za-z_][A-Za-z0-9_]*(\\[A-Za-z_][A-Za-z0-9_]*)*$`)
)

func (o Settings) prefix() string {
	if o.Prefix == "" {
		return "mdl_"
	}
	return o.Prefix
}

// allowedTasks returns the allow-list in Moodle's canonical form, with
// the leading backslash.
func (o Settings) allowedTasks() []string {
	src := o.AllowedTasks
	if src == nil {
		src = DefaultAllowedTasks()
	}
	out := make([]string, 0, len(src))
	for _, t := range src {
		out = append(out, `\`+strings.TrimPrefix(t, `\`))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// validate checks what both the rewriter and the sanitizer rely on.
func (o Settings) validate() error {
	if !prefixRe.MatchString(o.prefix()) {
		return fmt.Errorf("table prefix %q: want lower-case letters, digits and underscores", o.Prefix)
	}
	for _, t := range o.allowedTasks() {
		if !taskRe.MatchString(t) {
			return fmt.Errorf("allowed task %q is not a PHP class name", t)
		}
	}
	if strings.ContainsAny(o.DivertEmailsTo, " \t\r\n,;") {
		return fmt.Errorf("divert address %q: want one plain address", o.DivertEmailsTo)
	}
	return nil
}

// validateConfig checks the values a config.php rewrite needs.
func (o Settings) validateConfig() error {
	if err := o.validate(); err != nil {
		return err
	}
	u, err := url.Parse(o.WWWRoot)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("wwwroot %q: want an http(s) URL", o.WWWRoot)
	}
	if strings.HasSuffix(o.WWWRoot, "/") {
		return fmt.Errorf("wwwroot %q: Moodle's wwwroot must not end with /", o.WWWRoot)
	}
	if o.DBName == "" || o.DBHost == "" {
		return fmt.Errorf("the copy's database host and name are required")
	}
	return nil
}

// host returns the host of a URL, lower-cased, or "".
func host(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

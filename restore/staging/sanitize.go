package staging

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/snapshot/postgres"
)

// Core settings (mdl_config) that hold credentials of outside services:
// blanked so the copy cannot send as, log into or poll production's
// services (moodle-ops §4.3).
var blankedConfig = []string{
	"smtppass",
	"airnotifieraccesskey",
	"messageinbound_host",
	"messageinbound_hostuser",
	"messageinbound_hostpass",
}

// Core switches (mdl_config) turned off: web services and the mobile app
// (production's tokens are deleted anyway), inbound mail (the copy would
// consume production's mailbox).
var disabledConfig = []string{
	"enablewebservices",
	"enablemobilewebservice",
	"messageinbound_enabled",
}

// Plugin settings (mdl_config_plugins) blanked by exact (plugin, name):
// directory and SIS connections whose sync tasks would write to the
// real systems.
var blankedPluginSettings = [][2]string{
	{"auth_ldap", "bind_pw"},
	{"auth_db", "pass"},
	{"enrol_database", "dbhost"},
	{"enrol_database", "dbpass"},
	{"enrol_ldap", "bind_pw"},
}

// Plugin setting names blanked in any plugin: they hold secrets by their
// name. mdl_config is not matched this way, since core names such as
// passwordpolicy hold no secret. tool_objectfs's s3_key and friends are
// caught by objectfsKeys.
var blankedPluginPatterns = []string{"%password%", "%secret%", "%apikey%", "%api_key%", "%\\_pw", "%token%"}

// objectfsKeys are tool_objectfs's storage credentials: with production's
// keys the copy could delete production's objects.
var objectfsKeys = []string{"s3_key", "s3_secret", "azure_sastoken", "openstack_password", "swift_password"}

// sanitizer runs the statements of one Sanitize call in its transaction.
type sanitizer struct {
	tx      pgx.Tx
	prefix  string
	changes []string
}

func (s *sanitizer) table(name string) string { return s.prefix + name }

func (s *sanitizer) say(format string, args ...any) {
	s.changes = append(s.changes, fmt.Sprintf(format, args...))
}

func (s *sanitizer) hasTable(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := s.tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", postgres.Ident(s.table(name))).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up table %s: %w", s.table(name), err)
	}
	return ok, nil
}

func (s *sanitizer) hasColumn(ctx context.Context, tbl, col string) (bool, error) {
	var ok bool
	err := s.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = ANY (current_schemas(false)) AND table_name = $1 AND column_name = $2)`, s.table(tbl), col).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up column %s.%s: %w", s.table(tbl), col, err)
	}
	return ok, nil
}

// need reports whether the table (and columns) exist, and records a
// skipped step when they do not.
func (s *sanitizer) need(ctx context.Context, tbl, why string, cols ...string) (bool, error) {
	ok, err := s.hasTable(ctx, tbl)
	if err != nil || !ok {
		if err == nil {
			s.say("skipped %s: table %s does not exist (older Moodle or plugin not installed)", why, s.table(tbl))
		}
		return false, err
	}
	for _, c := range cols {
		ok, err := s.hasColumn(ctx, tbl, c)
		if err != nil || !ok {
			if err == nil {
				s.say("skipped %s: column %s.%s does not exist (older Moodle)", why, s.table(tbl), c)
			}
			return false, err
		}
	}
	return true, nil
}

func (s *sanitizer) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := s.tx.Exec(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", shorten(sql), err)
	}
	return tag.RowsAffected(), nil
}

// setConfig makes mdl_config name = value, inserting the row if needed.
// mdl_config.name has been unique in every Moodle version, but an UPDATE
// then INSERT does not depend on the index being there.
func (s *sanitizer) setConfig(ctx context.Context, name, value, show string) error {
	cfg := postgres.Ident(s.table("config"))
	var old *string
	err := s.tx.QueryRow(ctx, "SELECT value FROM "+cfg+" WHERE name = $1 LIMIT 1", name).Scan(&old)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := s.exec(ctx, "INSERT INTO "+cfg+" (name, value) VALUES ($1, $2)", name, value); err != nil {
			return err
		}
		s.say("mdl_config: added %s = %s", name, show)
		return nil
	case err != nil:
		return fmt.Errorf("read setting %s: %w", name, err)
	case old != nil && *old == value:
		return nil
	}
	if _, err := s.exec(ctx, "UPDATE "+cfg+" SET value = $2 WHERE name = $1", name, value); err != nil {
		return err
	}
	s.say("mdl_config: set %s = %s", name, show)
	return nil
}

// Sanitize makes the copy's database at db safe, in one transaction:
//
//   - e-mail: noemailever = 1, or divertallemailsto = o.DivertEmailsTo
//     (and divertallemailsexcept emptied);
//   - scheduled tasks: every task but o's allow-list disabled and marked
//     customised, so that an upgrade on the copy does not re-enable it;
//     cron itself stays on for the allowed housekeeping;
//   - queued adhoc tasks, sessions, web service tokens and users' private
//     keys (RSS, calendar) deleted;
//   - the e-mail and push (airnotifier) message processors, web services,
//     the mobile service and inbound mail disabled; SMTP, push, inbound
//     mail, LDAP, external database, object storage and other plugin
//     credentials blanked; payment accounts and gateways and OAuth 2
//     issuers disabled; hub registrations deleted;
//   - siteidentifier regenerated, so the copy's cache keys and
//     registration differ from production's.
//
// Tables and columns an older Moodle lacks are skipped and said so. The
// result lists every change with its row count; names of blanked
// settings are listed, their values never.
func Sanitize(ctx context.Context, db postgres.DB, o Settings) ([]string, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("sanitize %s: %w", db, err)
	}
	conn, err := db.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("sanitize %s: %w", db, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("sanitize %s: %w", db, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	s := &sanitizer{tx: tx, prefix: o.prefix()}
	if err := s.run(ctx, o); err != nil {
		return nil, fmt.Errorf("sanitize %s: %w (nothing was changed)", db, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("sanitize %s: commit: %w", db, err)
	}
	return s.changes, nil
}

func (s *sanitizer) run(ctx context.Context, o Settings) error {
	ok, err := s.hasTable(ctx, "config")
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("table %s does not exist: not a Moodle database with prefix %q", s.table("config"), s.prefix)
	}
	steps := []func(context.Context, Settings) error{
		s.mail, s.tasks, s.queues, s.processors, s.coreCredentials, s.pluginCredentials,
		s.integrations, s.siteIdentifier,
	}
	for _, step := range steps {
		if err := step(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

func (s *sanitizer) mail(ctx context.Context, o Settings) error {
	if o.DivertEmailsTo == "" {
		return s.setConfig(ctx, "noemailever", "1", "1")
	}
	if err := s.setConfig(ctx, "divertallemailsto", o.DivertEmailsTo, o.DivertEmailsTo); err != nil {
		return err
	}
	return s.setConfig(ctx, "divertallemailsexcept", "", "''")
}

func (s *sanitizer) tasks(ctx context.Context, o Settings) error {
	ok, err := s.need(ctx, "task_scheduled", "disabling scheduled tasks", "classname", "disabled")
	if err != nil {
		return err
	}
	if !ok {
		// Without per-task switches only cron as a whole can be stopped.
		return s.setConfig(ctx, "cron_enabled", "0", "0 (cron off: this Moodle has no per-task switch)")
	}
	tbl := postgres.Ident(s.table("task_scheduled"))
	allowed := o.allowedTasks()
	set := "disabled = 1"
	where := "(disabled = 0"
	customised, err := s.hasColumn(ctx, "task_scheduled", "customised")
	if err != nil {
		return err
	}
	if customised {
		set += ", customised = 1"
		where += " OR customised = 0"
	}
	where += ")"
	// Moodle stores class names with a leading backslash; compare without.
	n, err := s.exec(ctx, "UPDATE "+tbl+" SET "+set+" WHERE "+where+
		" AND ltrim(classname, '\\') <> ALL ($1)", trimTasks(allowed))
	if err != nil {
		return err
	}
	var kept []string
	rows, err := s.tx.Query(ctx, "SELECT classname FROM "+tbl+" WHERE disabled = 0 ORDER BY classname")
	if err != nil {
		return fmt.Errorf("list enabled tasks: %w", err)
	}
	kept, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list enabled tasks: %w", err)
	}
	s.say("%s: disabled %d task(s), marked customised; still enabled (allow-list): %d%s", s.table("task_scheduled"), n, len(kept), listSuffix(kept))
	return nil
}

func trimTasks(ts []string) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = strings.TrimPrefix(t, `\`)
	}
	return out
}

func listSuffix(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return " (" + strings.Join(xs, ", ") + ")"
}

// queues deletes work and access production granted: queued adhoc tasks
// (notifications, backups), sessions, web service tokens and private
// keys valid against production.
func (s *sanitizer) queues(ctx context.Context, _ Settings) error {
	for _, t := range []struct{ table, what string }{
		{"task_adhoc", "queued adhoc tasks"},
		{"sessions", "sessions"},
		{"external_tokens", "web service tokens"},
		{"user_private_key", "user private keys (RSS, calendar export)"},
		{"registration_hubs", "hub registrations (the copy must not report as production)"},
	} {
		ok, err := s.need(ctx, t.table, "deleting "+t.what)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		n, err := s.exec(ctx, "DELETE FROM "+postgres.Ident(s.table(t.table)))
		if err != nil {
			return err
		}
		s.say("%s: deleted %d row(s): %s", s.table(t.table), n, t.what)
	}
	return nil
}

func (s *sanitizer) processors(ctx context.Context, _ Settings) error {
	ok, err := s.need(ctx, "message_processors", "disabling the e-mail and push processors", "name", "enabled")
	if err != nil || !ok {
		return err
	}
	n, err := s.exec(ctx, "UPDATE "+postgres.Ident(s.table("message_processors"))+
		" SET enabled = 0 WHERE name IN ('email', 'airnotifier') AND enabled <> 0")
	if err != nil {
		return err
	}
	s.say("%s: disabled %d processor(s) (email, airnotifier)", s.table("message_processors"), n)
	return nil
}

func (s *sanitizer) coreCredentials(ctx context.Context, _ Settings) error {
	cfg := postgres.Ident(s.table("config"))
	blank := func(names []string, value, verb string) error {
		rows, err := s.tx.Query(ctx, "UPDATE "+cfg+" SET value = $2 WHERE name = ANY ($1) AND value <> $2 RETURNING name", names, value)
		if err != nil {
			return fmt.Errorf("%s settings: %w", verb, err)
		}
		done, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("%s settings: %w", verb, err)
		}
		slices.Sort(done)
		s.say("%s: %s %d setting(s)%s", s.table("config"), verb, len(done), listSuffix(done))
		return nil
	}
	if err := blank(blankedConfig, "", "blanked"); err != nil {
		return err
	}
	return blank(disabledConfig, "0", "switched off")
}

func (s *sanitizer) pluginCredentials(ctx context.Context, _ Settings) error {
	ok, err := s.need(ctx, "config_plugins", "blanking plugin credentials", "plugin", "name", "value")
	if err != nil || !ok {
		return err
	}
	var plugins, names []string
	for _, p := range blankedPluginSettings {
		plugins, names = append(plugins, p[0]), append(names, p[1])
	}
	rows, err := s.tx.Query(ctx, "UPDATE "+postgres.Ident(s.table("config_plugins"))+` SET value = ''
		WHERE value <> '' AND (
			(plugin, name) IN (SELECT * FROM unnest($1::text[], $2::text[]))
			OR name ILIKE ANY ($3)
			OR (plugin = 'tool_objectfs' AND name = ANY ($4)))
		RETURNING plugin || '/' || name`, plugins, names, blankedPluginPatterns, objectfsKeys)
	if err != nil {
		return fmt.Errorf("blank plugin credentials: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("blank plugin credentials: %w", err)
	}
	slices.Sort(done)
	s.say("%s: blanked %d credential(s)%s", s.table("config_plugins"), len(done), listSuffix(done))
	return nil
}

// integrations disables what would take real money or log in at a real
// identity provider.
func (s *sanitizer) integrations(ctx context.Context, _ Settings) error {
	for _, t := range []struct{ table, what string }{
		{"payment_accounts", "payment accounts"},
		{"payment_gateways", "payment gateways"},
		{"oauth2_issuer", "OAuth 2 issuers"},
	} {
		ok, err := s.need(ctx, t.table, "disabling "+t.what, "enabled")
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		n, err := s.exec(ctx, "UPDATE "+postgres.Ident(s.table(t.table))+" SET enabled = 0 WHERE enabled <> 0")
		if err != nil {
			return err
		}
		s.say("%s: disabled %d %s", s.table(t.table), n, t.what)
	}
	return nil
}

// siteIdentifier gives the copy its own identity: MUC cache keys and the
// moodle.org registration derive from it (moodle-ops §4.5). The format
// is Moodle's own: 32 random characters and the site's host.
func (s *sanitizer) siteIdentifier(ctx context.Context, o Settings) error {
	id := rand.Text() + rand.Text()
	id = strings.ToLower(id)[:32] + host(o.WWWRoot)
	return s.setConfig(ctx, "siteidentifier", id, "a new random value")
}

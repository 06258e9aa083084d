package staging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/restore/staging/stagingtest"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot/postgres"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// newMoodleDB creates a moodlegen Tiny database, dropped after the test.
func newMoodleDB(t *testing.T) (postgres.DB, *pgx.Conn) {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "t_sanitize_" + hex.EncodeToString(b[:])
	t.Cleanup(func() { snapshottest.DropDatabases(t, name) })
	ctx := context.Background()
	if err := moodlegen.CreateDatabase(ctx, snapshottest.AdminURL(), name, moodlegen.Tiny()); err != nil {
		t.Fatal(err)
	}
	db := postgres.DB{URL: stagingtest.DBURL(t, name)}
	conn, err := db.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return db, conn
}

func queryInt(t *testing.T, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func configValue(t *testing.T, conn *pgx.Conn, name string) string {
	return queryString(t, conn, "SELECT value FROM mdl_config WHERE name = $1", name)
}

func pluginValue(t *testing.T, conn *pgx.Conn, plugin, name string) string {
	return queryString(t, conn, "SELECT value FROM mdl_config_plugins WHERE plugin = $1 AND name = $2", plugin, name)
}

func hasChange(changes []string, parts ...string) bool {
	for _, c := range changes {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(c, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestSanitize(t *testing.T) {
	ctx := context.Background()
	db, conn := newMoodleDB(t)
	secrets := map[string]string{}
	for _, n := range []string{"smtppass", "airnotifieraccesskey", "messageinbound_hostpass"} {
		secrets[n] = configValue(t, conn, n)
	}
	secrets["bind_pw"] = pluginValue(t, conn, "auth_ldap", "bind_pw")
	oldID := configValue(t, conn, "siteidentifier")
	before := map[string]int64{}
	for _, tbl := range []string{"mdl_task_adhoc", "mdl_sessions", "mdl_external_tokens", "mdl_user_private_key"} {
		before[tbl] = queryInt(t, conn, "SELECT count(*) FROM "+tbl)
		if before[tbl] == 0 {
			t.Fatalf("moodlegen left %s empty: the test would prove nothing", tbl)
		}
	}
	o := Settings{WWWRoot: "https://client-x-staging.example.ch"}
	changes, err := Sanitize(ctx, db, o)
	if err != nil {
		t.Fatal(err)
	}

	if v := configValue(t, conn, "noemailever"); v != "1" {
		t.Errorf("noemailever = %q", v)
	}
	if v := configValue(t, conn, "cron_enabled"); v != "1" {
		t.Errorf("cron_enabled = %q: cron must stay on for the allowed housekeeping", v)
	}
	enabled := queryInt(t, conn, "SELECT count(*) FROM mdl_task_scheduled WHERE disabled = 0")
	allowedPresent := queryInt(t, conn, "SELECT count(*) FROM mdl_task_scheduled WHERE classname = ANY ($1)", DefaultAllowedTasks())
	if enabled != allowedPresent || enabled == 0 {
		t.Errorf("%d tasks enabled, want the %d allowed ones", enabled, allowedPresent)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM mdl_task_scheduled WHERE disabled = 1 AND customised = 0"); n != 0 {
		t.Errorf("%d disabled tasks not marked customised: an upgrade would re-enable them", n)
	}
	for _, c := range []string{`\auth_ldap\task\sync_task`, `\tool_messageinbound\task\pickup_task`, `\core\task\registration_cron_task`} {
		if n := queryInt(t, conn, "SELECT disabled FROM mdl_task_scheduled WHERE classname = $1", c); n != 1 {
			t.Errorf("%s still enabled", c)
		}
	}
	for tbl, n := range before {
		if got := queryInt(t, conn, "SELECT count(*) FROM "+tbl); got != 0 {
			t.Errorf("%s has %d rows, want 0", tbl, got)
		}
		if !hasChange(changes, tbl, "deleted", strconv.FormatInt(n, 10)+" row") {
			t.Errorf("no change line for deleting %d rows of %s in %q", n, tbl, changes)
		}
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM mdl_message_processors WHERE enabled = 1 AND name IN ('email', 'airnotifier')"); n != 0 {
		t.Errorf("%d e-mail/push processors still enabled", n)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM mdl_message_processors WHERE enabled = 1 AND name = 'popup'"); n != 1 {
		t.Errorf("popup processor disabled too")
	}
	for _, n := range []string{"smtppass", "airnotifieraccesskey", "messageinbound_hostpass", "messageinbound_host"} {
		if v := configValue(t, conn, n); v != "" {
			t.Errorf("%s not blanked", n)
		}
	}
	for _, n := range []string{"enablewebservices", "enablemobilewebservice", "messageinbound_enabled"} {
		if v := configValue(t, conn, n); v != "0" {
			t.Errorf("%s = %q, want 0", n, v)
		}
	}
	for _, p := range [][2]string{{"auth_ldap", "bind_pw"}, {"enrol_database", "dbhost"}, {"enrol_database", "dbpass"},
		{"cachestore_redis", "test_password"}, {"local_sis", "apikey"}} {
		if v := pluginValue(t, conn, p[0], p[1]); v != "" {
			t.Errorf("%s/%s not blanked", p[0], p[1])
		}
	}
	if v := pluginValue(t, conn, "auth_ldap", "host_url"); v == "" {
		t.Errorf("auth_ldap/host_url blanked: only credentials should be")
	}
	for _, tbl := range []string{"mdl_payment_accounts", "mdl_payment_gateways", "mdl_oauth2_issuer"} {
		if n := queryInt(t, conn, "SELECT count(*) FROM "+tbl+" WHERE enabled <> 0"); n != 0 {
			t.Errorf("%s: %d rows still enabled", tbl, n)
		}
	}
	id := configValue(t, conn, "siteidentifier")
	if id == oldID || !strings.HasSuffix(id, "client-x-staging.example.ch") || len(id) != 32+len("client-x-staging.example.ch") {
		t.Errorf("siteidentifier %q (was %q): want a new one for the staging host", id, oldID)
	}
	for _, c := range changes {
		for name, v := range secrets {
			if v != "" && strings.Contains(c, v) {
				t.Errorf("change line shows the value of %s: %s", name, c)
			}
		}
	}
	if !hasChange(changes, "blanked", "auth_ldap/bind_pw") {
		t.Errorf("blanked plugin settings not listed: %q", changes)
	}

	// Again: nothing left to do but a new siteidentifier.
	again, err := Sanitize(ctx, db, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again {
		if strings.Contains(c, "siteidentifier") {
			continue
		}
		if !strings.Contains(c, " 0 ") && !strings.Contains(c, ": 0") && !strings.Contains(c, "still enabled") && !strings.HasPrefix(c, "skipped") {
			t.Errorf("second run changed something: %s", c)
		}
	}
}

func TestSanitizeDivert(t *testing.T) {
	db, conn := newMoodleDB(t)
	if _, err := conn.Exec(context.Background(), "DELETE FROM mdl_config WHERE name LIKE 'divert%'"); err != nil {
		t.Fatal(err)
	}
	changes, err := Sanitize(context.Background(), db, Settings{WWWRoot: "https://s.example.ch", DivertEmailsTo: "qa@example.ch"})
	if err != nil {
		t.Fatal(err)
	}
	if v := configValue(t, conn, "divertallemailsto"); v != "qa@example.ch" {
		t.Errorf("divertallemailsto = %q", v)
	}
	if v := configValue(t, conn, "divertallemailsexcept"); v != "" {
		t.Errorf("divertallemailsexcept = %q", v)
	}
	if !hasChange(changes, "added divertallemailsto = qa@example.ch") {
		t.Errorf("changes: %q", changes)
	}
}

// An older Moodle lacks tables and columns: they are skipped, and said so.
func TestSanitizeOlderMoodle(t *testing.T) {
	tests := []struct {
		name  string
		drop  string
		check func(t *testing.T, conn *pgx.Conn, changes []string)
	}{
		{
			name: "no payments, no OAuth 2, no customised",
			drop: "DROP TABLE mdl_payment_gateways; DROP TABLE mdl_payment_accounts; DROP TABLE mdl_oauth2_issuer; ALTER TABLE mdl_task_scheduled DROP COLUMN customised",
			check: func(t *testing.T, conn *pgx.Conn, changes []string) {
				for _, tbl := range []string{"mdl_payment_gateways", "mdl_payment_accounts", "mdl_oauth2_issuer", "mdl_registration_hubs"} {
					if !hasChange(changes, "skipped", tbl) {
						t.Errorf("no skip reported for %s: %q", tbl, changes)
					}
				}
				if n := queryInt(t, conn, "SELECT count(*) FROM mdl_task_scheduled WHERE disabled = 0"); n > int64(len(DefaultAllowedTasks())) {
					t.Errorf("%d tasks enabled", n)
				}
			},
		},
		{
			name: "no per-task switch",
			drop: "ALTER TABLE mdl_task_scheduled DROP COLUMN disabled",
			check: func(t *testing.T, conn *pgx.Conn, changes []string) {
				if v := configValue(t, conn, "cron_enabled"); v != "0" {
					t.Errorf("cron_enabled = %q: without per-task switches cron must stop", v)
				}
				if !hasChange(changes, "skipped", "mdl_task_scheduled.disabled") {
					t.Errorf("changes: %q", changes)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, conn := newMoodleDB(t)
			if _, err := conn.Exec(context.Background(), tt.drop); err != nil {
				t.Fatal(err)
			}
			changes, err := Sanitize(context.Background(), db, Settings{WWWRoot: "https://s.example.ch"})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, conn, changes)
		})
	}
}

// One failing statement leaves the database as it was: it is one
// transaction.
func TestSanitizeAtomic(t *testing.T) {
	ctx := context.Background()
	db, conn := newMoodleDB(t)
	_, err := conn.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
		CREATE TRIGGER refuse BEFORE DELETE ON mdl_external_tokens FOR EACH STATEMENT EXECUTE FUNCTION refuse()`)
	if err != nil {
		t.Fatal(err)
	}
	withTrigger, err := moodlegen.DatabaseDigest(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sanitize(ctx, db, Settings{WWWRoot: "https://s.example.ch"}); err == nil {
		t.Fatal("Sanitize succeeded although a statement fails")
	}
	after, err := moodlegen.DatabaseDigest(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Sequences are not transactional in PostgreSQL: an INSERT that was
	// rolled back still used up its id. Rows and schema must be equal.
	withTrigger.Sequences, after.Sequences = nil, nil
	if d := withTrigger.Diff(after); len(d) > 0 {
		t.Errorf("a failed Sanitize changed the database: %v", d)
	}
}

func TestSanitizeRefuses(t *testing.T) {
	ctx := context.Background()
	db, conn := newMoodleDB(t)
	if _, err := Sanitize(ctx, db, Settings{Prefix: "wrong_"}); err == nil || !strings.Contains(err.Error(), "wrong_config") {
		t.Errorf("a database without wrong_config: err = %v", err)
	}
	if _, err := Sanitize(ctx, db, Settings{Prefix: "x; DROP TABLE mdl_user; --"}); err == nil {
		t.Error("a prefix with SQL in it was accepted")
	}
	if _, err := Sanitize(ctx, db, Settings{AllowedTasks: []string{`\core\task\x'); DELETE FROM mdl_user; --`}}); err == nil {
		t.Error("a task name with SQL in it was accepted")
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM mdl_user"); n == 0 {
		t.Error("mdl_user emptied")
	}
}

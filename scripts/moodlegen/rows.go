package moodlegen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// table is the generated content of one small table.
type table struct {
	name    string
	columns []string
	rows    [][]any
}

// user holds the fields of one mdl_user row that other tables refer to.
type user struct {
	id                  int64
	username, first     string
	last, email, auth   string
	lastip              string
	timecreated, access int64
}

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// passwordHash returns a string shaped like Moodle 4.5's SHA-512 crypt
// hashes. It is not a hash of anything: nobody should log in with it.
func passwordHash(r *rand.Rand) string {
	return "$6$rounds=10000$" + randString(r, 16, cryptAlphabet) + "$" + randString(r, 86, cryptAlphabet)
}

// ipFor returns the stable address a user connects from.
func ipFor(u int64) string {
	x := mix(uint64(u) + 0x5bd1e995)
	switch x % 4 {
	case 0:
		return fmt.Sprintf("10.%d.%d.%d", x>>8&0xff, x>>16&0xff, 1+x>>24%254)
	case 1:
		return fmt.Sprintf("192.168.%d.%d", x>>8&0xff, 1+x>>16%254)
	case 2:
		return fmt.Sprintf("2001:db8:%x:%x::%x", x>>8&0xffff, x>>24&0xffff, 1+x>>40&0xfff)
	}
	return fmt.Sprintf("198.51.100.%d", 1+x>>8%254)
}

// buildUsers generates guest, admin and s.Users people.
func buildUsers(s Spec) ([]user, table) {
	r := key(s.Seed, "users").rand()
	epoch := s.Epoch.Unix()
	t := table{name: "mdl_user", columns: []string{"id", "auth", "confirmed", "policyagreed", "deleted",
		"suspended", "mnethostid", "username", "password", "idnumber", "firstname", "lastname", "email",
		"emailstop", "phone1", "phone2", "institution", "department", "address", "city", "country", "lang",
		"calendartype", "theme", "timezone", "firstaccess", "lastaccess", "lastlogin", "currentlogin", "lastip",
		"secret", "picture", "description", "descriptionformat", "mailformat", "maildigest", "maildisplay",
		"autosubscribe", "trackforums", "timecreated", "timemodified", "trustbitmask", "imagealt",
		"lastnamephonetic", "firstnamephonetic", "middlename", "alternatename", "moodlenetprofile"}}
	users := make([]user, 0, s.Users+2)
	seen := map[string]bool{"guest": true, "admin": true}
	installed := epoch - 3*365*86400
	host := s.host()
	for id := int64(1); id <= int64(s.Users)+2; id++ {
		u := user{id: id, auth: "manual", lastip: ipFor(id)}
		var deleted, suspended, policy int16
		idnumber, phone, dept, city, lang, tz := "", "", "", "", "de", "99"
		var desc *string
		switch id {
		case guestID:
			u.username, u.first, u.last, u.email = "guest", "Gast", " ", "root@localhost"
			u.timecreated = installed
			u.lastip = ""
		case adminID:
			u.username, u.first, u.last, u.email = "admin", "Admin", "Benutzer", "admin@"+host
			u.timecreated = installed
			u.access = epoch - int64(r.IntN(3600))
		default:
			u.first, u.last = pick(r, firstNames), pick(r, lastNames)
			u.username = usernameFor(u.first, u.last, 0)
			for n := 2; seen[u.username]; n++ {
				u.username = usernameFor(u.first, u.last, n)
			}
			staff := r.IntN(12) == 0
			if staff {
				u.email = u.username + "@" + host
				dept = pick(r, subjects)
			} else {
				u.email = u.username + "@students.example.ch"
				idnumber = fmt.Sprintf("S%d%05d", 2018+r.IntN(7), r.IntN(100000))
			}
			u.auth = []string{"manual", "manual", "manual", "ldap", "ldap", "oauth2", "saml2"}[r.IntN(7)]
			u.timecreated = between(r, installed, epoch-86400)
			if r.IntN(10) > 0 {
				u.access = between(r, u.timecreated, epoch)
			}
			if r.IntN(50) == 0 {
				deleted = 1
			}
			if r.IntN(30) == 0 {
				suspended = 1
			}
			policy = int16(r.IntN(2))
			if r.IntN(3) == 0 {
				phone = fmt.Sprintf("+41 7%d %03d %02d %02d", 5+r.IntN(5), r.IntN(1000), r.IntN(100), r.IntN(100))
			}
			city = pick(r, cities)
			lang = []string{"de", "de", "de", "fr", "en", "it"}[r.IntN(6)]
			if r.IntN(3) == 0 {
				tz = "Europe/Zurich"
			}
			if r.IntN(5) == 0 {
				d := "<p>" + string(appendSentence(nil, r)) + "</p>"
				desc = &d
			}
		}
		seen[u.username] = true
		users = append(users, u)
		secret := ""
		if r.IntN(8) == 0 {
			secret = randString(r, 15, alnum)
		}
		var first, last int64
		if u.access > 0 {
			first = between(r, u.timecreated, u.access)
			last = between(r, first, u.access)
		}
		empty := ""
		t.rows = append(t.rows, []any{
			u.id, u.auth, int16(1), policy, deleted, suspended, int64(1), u.username, passwordHash(r),
			idnumber, u.first, u.last, u.email, int16(0), phone, "", "Hochschule Example", dept, "", city,
			"CH", lang, "gregorian", "", tz, first, u.access, last, u.access, u.lastip, secret, int64(0),
			desc, int16(1), int16(1), int16(0), int16(2), int16(1), int16(0), u.timecreated,
			max(u.timecreated, last), int64(0), nil, &empty, &empty, &empty, &empty, nil,
		})
	}
	return users, t
}

func buildCourses(s Spec) table {
	r := key(s.Seed, "courses").rand()
	epoch := s.Epoch.Unix()
	t := table{name: "mdl_course", columns: []string{"id", "category", "sortorder", "fullname", "shortname",
		"idnumber", "summary", "summaryformat", "format", "showgrades", "newsitems", "startdate", "enddate",
		"relativedatesmode", "marker", "maxbytes", "legacyfiles", "showreports", "visible", "visibleold",
		"downloadcontent", "groupmode", "groupmodeforce", "defaultgroupingid", "lang", "calendartype", "theme",
		"timecreated", "timemodified", "requested", "enablecompletion", "completionnotify", "cacherev",
		"originalcourseid", "showactivitydates", "showcompletionconditions", "pdfexportfont"}}
	installed := epoch - 3*365*86400
	empty := ""
	site := "<p>Willkommen auf der Lernplattform der Hochschule Example.</p>"
	t.rows = append(t.rows, []any{int64(1), int64(0), int64(1), "Lernplattform Hochschule Example", "LP-HE", "",
		&site, int16(0), "site", int16(1), int32(3), int64(0), int64(0), int16(0), int64(0), int64(0), int16(0),
		int16(0), int16(1), int16(1), nil, int16(0), int16(0), int64(0), "", "", "", installed, installed,
		int16(0), int16(0), int16(0), epoch - 86400, nil, int16(1), nil, nil})
	for i := 0; i < s.Courses; i++ {
		id := int64(firstCourseID + i)
		subject := pick(r, subjects)
		year := 2022 + r.IntN(4)
		term := []string{"HS", "FS"}[r.IntN(2)]
		full := fmt.Sprintf("%s %s %d (Gruppe %c)", subject, term, year, 'A'+rune(r.IntN(4)))
		abbrev := strings.ToUpper(translit.Replace(subject))
		abbrev = strings.Map(func(c rune) rune {
			if c >= 'A' && c <= 'Z' {
				return c
			}
			return -1
		}, abbrev)
		short := fmt.Sprintf("%.6s-%s%d-%d", abbrev, term, year%100, id)
		summary := "<p>" + string(appendParagraph(nil, r)) + "</p>"
		created := between(r, installed, epoch-30*86400)
		start := created + int64(r.IntN(60))*86400
		t.rows = append(t.rows, []any{id, int64(1 + r.IntN(8)), int64(10000 + i), full, short,
			fmt.Sprintf("%s.%d.%d", abbrev, year, id), &summary, int16(1), pick(r, []string{"topics", "weeks", "topics", "tiles"}),
			int16(1), int32(5), start, start + 120*86400, int16(0), int64(0), int64(0), int16(0), int16(0),
			int16(1 - r.IntN(10)/9), int16(1), nil, int16(0), int16(0), int64(0), "", "", "", created,
			between(r, created, epoch), int16(0), int16(r.IntN(2)), int16(0), between(r, created, epoch), nil,
			int16(1), int16(1), &empty})
	}
	return t
}

// buildConfig returns mdl_config. Secrets are random, fake and deterministic.
func buildConfig(s Spec) table {
	r := key(s.Seed, "config").rand()
	epoch := s.Epoch.Unix()
	host := s.host()
	rev := strconv.FormatInt(epoch-int64(r.IntN(86400)), 10)
	kv := [][2]string{
		{"rolesactive", "1"},
		{"auth", "ldap,oauth2,saml2"},
		{"auth_pop3mailbox", "INBOX"},
		{"enrol_plugins_enabled", "manual,guest,self,cohort,database"},
		{"theme", "boost"},
		{"filter_multilang_converted", "1"},
		{"siteidentifier", randString(r, 32, alnum) + host},
		{"backup_version", "2008111700"},
		{"backup_release", "2.0 dev"},
		{"mnet_dispatcher_mode", "off"},
		{"sessiontimeout", "28800"},
		{"stringfilters", ""},
		{"filterall", "0"},
		{"texteditors", "tiny,atto,tinymce,textarea"},
		{"antiviruses", ""},
		{"media_plugins_sortorder", "videojs,youtube"},
		{"upgrade_extracreditweightsstepignored", "1"},
		{"upgrade_calculatedgradeitemsignored", "1"},
		{"upgrade_letterboundarycourses", "1"},
		{"mnet_localhost_id", "1"},
		{"mnet_all_hosts_id", "2"},
		{"siteguest", "1"},
		{"siteadmins", "2"},
		{"themerev", rev},
		{"jsrev", rev},
		{"templaterev", rev},
		{"langrev", rev},
		{"localcachedirpurged", rev},
		{"scheduledtaskreset", rev},
		{"allversionshash", randHex(r, 40)},
		{"fileslastcleanup", strconv.FormatInt(epoch-int64(r.IntN(6*3600)), 10)},
		{"filescleanupperiod", "86400"},
		{"timezone", "Europe/Zurich"},
		{"forcetimezone", "99"},
		{"lang", "de"},
		{"country", "CH"},
		{"defaultcity", "Zürich"},
		{"registerauth", ""},
		{"calendar_exportsalt", randString(r, 60, alnum)},
		{"cronclionly", "1"},
		{"cron_enabled", "1"},
		{"cronremotepassword", ""},
		{"maintenance_enabled", "0"},
		{"maintenance_message", ""},
		{"smtphosts", "smtp.example.ch:587"},
		{"smtpsecure", "tls"},
		{"smtpauthtype", "LOGIN"},
		{"smtpuser", "moodle@" + host},
		{"smtppass", randString(r, 20, alnum)},
		{"smtpmaxbulk", "1"},
		{"noreplyaddress", "noreply@" + host},
		{"supportemail", "support@" + host},
		{"supportname", "Support Lernplattform"},
		{"supportpage", s.WWWRoot + "/local/support/"},
		{"emailheaders", ""},
		{"allowedemaildomains", ""},
		{"enablewebservices", "1"},
		{"webserviceprotocols", "rest"},
		{"enablemobilewebservice", "1"},
		{"airnotifierurl", "https://messages.moodle.net"},
		{"airnotifierport", "443"},
		{"airnotifiermobileappname", "com.moodle.moodlemobile"},
		{"airnotifierappname", "commoodlemoodlemobile"},
		{"airnotifieraccesskey", randHex(r, 32)},
		{"messageinbound_enabled", "1"},
		{"messageinbound_mailbox", "moodle"},
		{"messageinbound_domain", "example.ch"},
		{"messageinbound_host", "imap.example.ch:993"},
		{"messageinbound_hostssl", "ssl"},
		{"messageinbound_hostuser", "moodle-inbound@example.ch"},
		{"messageinbound_hostpass", randString(r, 18, alnum)},
		{"recaptchapublickey", randString(r, 40, alnum)},
		{"recaptchaprivatekey", randString(r, 40, alnum)},
		{"enablecompletion", "1"},
		{"enableanalytics", "1"},
		{"enablebadges", "1"},
		{"enableblogs", "0"},
		{"enablerssfeeds", "1"},
		{"enablecalendarexport", "1"},
		{"enableglobalsearch", "0"},
		{"enableoutcomes", "0"},
		{"enableportfolios", "0"},
		{"enableplagiarism", "0"},
		{"enablestats", "0"},
		{"enablenotes", "1"},
		{"messaging", "1"},
		{"loglifetime", "0"},
		{"maxbytes", "104857600"},
		{"userquota", "104857600"},
		{"forcelogin", "1"},
		{"guestloginbutton", "0"},
		{"passwordpolicy", "1"},
		{"minpasswordlength", "10"},
		{"lockoutthreshold", "10"},
		{"cookiesecure", "1"},
		{"allowframembedding", "0"},
		{"additionalhtmlhead", ""},
		{"additionalhtmlfooter", ""},
		{"sitepolicy", ""},
		{"registrationpending", "0"},
		{"site_is_public", "0"},
		{"version", "2024100700.00"},
		{"release", "4.5 (Build: 20241007)"},
		{"branch", "405"},
		{"localcachedir", ""},
		{"statsfirstrun", "none"},
		{"statslastdaily", "0"},
		{"digestmailtimelast", strconv.FormatInt(epoch-int64(r.IntN(86400)), 10)},
		{"scorm_updatetimelast", strconv.FormatInt(epoch-int64(r.IntN(86400)), 10)},
	}
	t := table{name: "mdl_config", columns: []string{"id", "name", "value"}}
	for i, p := range kv {
		t.rows = append(t.rows, []any{int64(i + 1), p[0], p[1]})
	}
	return t
}

func buildConfigPlugins(s Spec) table {
	r := key(s.Seed, "config_plugins").rand()
	host := s.host()
	kv := [][3]string{
		{"auth_ldap", "host_url", "ldaps://ldap.example.ch"},
		{"auth_ldap", "ldapencoding", "utf-8"},
		{"auth_ldap", "bind_dn", "cn=moodle,ou=services,dc=example,dc=ch"},
		{"auth_ldap", "bind_pw", randString(r, 24, alnum)},
		{"auth_ldap", "contexts", "ou=people,dc=example,dc=ch"},
		{"auth_ldap", "user_attribute", "uid"},
		{"auth_ldap", "version", "2024100700"},
		{"enrol_database", "dbtype", "postgres"},
		{"enrol_database", "dbhost", "sis-db.example.ch"},
		{"enrol_database", "dbuser", "moodle_sync"},
		{"enrol_database", "dbpass", randString(r, 20, alnum)},
		{"enrol_database", "dbname", "sis"},
		{"enrol_database", "remoteenroltable", "v_enrolments"},
		{"enrol_database", "version", "2024100700"},
		{"auth_saml2", "idpmetadata", "https://idp.example.ch/idp/shibboleth"},
		{"auth_saml2", "entityid", s.WWWRoot + "/auth/saml2/sp/metadata.php"},
		{"auth_saml2", "version", "2024081900"},
		{"auth_oauth2", "version", "2024100700"},
		{"logstore_standard", "logguests", "1"},
		{"logstore_standard", "loglifetime", "365"},
		{"logstore_standard", "version", "2024100700"},
		{"tool_log", "enabled_stores", "logstore_standard"},
		{"message_airnotifier", "version", "2024100700"},
		{"message_email", "version", "2024100700"},
		{"message_popup", "version", "2024100700"},
		{"cachestore_redis", "test_server", "redis.internal:6379"},
		{"cachestore_redis", "test_password", randString(r, 16, alnum)},
		{"local_sis", "apikey", randHex(r, 40)},
		{"local_sis", "endpoint", "https://sis.example.ch/api/v2"},
		{"tool_mobile", "forcedurlscheme", "moodlemobile"},
		{"tool_mobile", "apppolicy", s.WWWRoot + "/admin/tool/policy/view.php"},
		{"paygw_paypal", "version", "2024100700"},
		{"core_h5p", "version", "2024100700"},
		{"editor_tiny", "version", "2024100700"},
		{"theme_boost", "brandcolor", "#0f47ad"},
		{"theme_boost", "version", "2024100700"},
		{"moodlecourse", "format", "topics"},
		{"moodlecourse", "maxsections", "52"},
		{"backup", "backup_auto_active", "1"},
		{"backup", "backup_auto_storage", "0"},
		{"backup", "backup_auto_destination", ""},
		{"analytics", "modeinstruction", "1"},
		{"noreply", "host", host},
	}
	for _, m := range []string{"assign", "book", "choice", "data", "feedback", "folder", "forum", "glossary",
		"h5pactivity", "label", "lesson", "lti", "page", "quiz", "resource", "scorm", "url", "wiki", "workshop"} {
		kv = append(kv, [3]string{"mod_" + m, "version", "2024100700"})
	}
	t := table{name: "mdl_config_plugins", columns: []string{"id", "plugin", "name", "value"}}
	for i, p := range kv {
		t.rows = append(t.rows, []any{int64(i + 1), p[0], p[1], p[2]})
	}
	return t
}

// cronField turns Moodle's "R" (randomised at install) into a value.
func cronField(r *rand.Rand, v string, limit int) string {
	if v == "R" {
		return strconv.Itoa(r.IntN(limit))
	}
	return v
}

func buildTaskScheduled(s Spec) table {
	r := key(s.Seed, "tasks").rand()
	epoch := s.Epoch.Unix()
	t := table{name: "mdl_task_scheduled", columns: []string{"id", "component", "classname", "lastruntime",
		"nextruntime", "blocking", "minute", "hour", "day", "month", "dayofweek", "faildelay", "customised",
		"disabled", "timestarted", "hostname", "pid"}}
	for i, task := range scheduledTasks {
		last := epoch - int64(r.IntN(3600))
		t.rows = append(t.rows, []any{int64(i + 1), task[0], task[1], last, last + 60 + int64(r.IntN(86400)),
			int16(0), cronField(r, task[2], 60), cronField(r, task[3], 24), cronField(r, task[4], 28), task[5],
			cronField(r, task[6], 7), int64(0), int16(0), int16(0), nil, nil, nil})
	}
	return t
}

func buildTaskAdhoc(s Spec) table {
	r := key(s.Seed, "adhoc").rand()
	epoch := s.Epoch.Unix()
	t := table{name: "mdl_task_adhoc", columns: []string{"id", "component", "classname", "nextruntime",
		"faildelay", "customdata", "userid", "blocking", "timecreated", "timestarted", "hostname", "pid"}}
	tasks := [][3]string{
		{"mod_forum", `\mod_forum\task\send_user_notifications`, `{"postids":[%d,%d]}`},
		{"mod_forum", `\mod_forum\task\send_user_digests`, `{"userid":%d,"timestamp":%d}`},
		{"moodle", `\core\task\asynchronous_backup_task`, `{"backupid":"` + randHex(r, 32) + `","course":%d,"time":%d}`},
		{"moodle", `\core_course\task\course_delete_modules`, `{"cms":[{"id":"%d"}],"userid":"%d","realuserid":"2"}`},
		{"moodle", `\core\task\refresh_mod_calendar_events_task`, `{"plugins":["assign"],"courseid":%d,"n":%d}`},
		{"tool_dataprivacy", `\tool_dataprivacy\task\process_data_request_task`, `{"requestid":%d,"n":%d}`},
	}
	for i, task := range tasks {
		uid := s.randomUser(r)
		created := epoch - int64(r.IntN(1800))
		data := fmt.Sprintf(task[2], r.IntN(100000), r.IntN(100000))
		t.rows = append(t.rows, []any{int64(i + 1), task[0], task[1], created + 60, int64(0), data, &uid,
			int16(0), created, nil, nil, nil})
	}
	return t
}

func buildSessions(s Spec, users []user) table {
	r := key(s.Seed, "sessions").rand()
	epoch := s.Epoch.Unix()
	t := table{name: "mdl_sessions", columns: []string{"id", "state", "sid", "userid", "sessdata",
		"timecreated", "timemodified", "firstip", "lastip"}}
	for i := 0; i < max(2, s.Users/20); i++ {
		u := users[r.IntN(len(users))]
		created := epoch - int64(r.IntN(8*3600))
		t.rows = append(t.rows, []any{int64(i + 1), int64(0), randString(r, 26, "abcdefghijklmnopqrstuvwxyz0123456789"),
			u.id, nil, created, between(r, created, epoch), u.lastip, u.lastip})
	}
	return t
}

func buildWebServices(s Spec, users []user) (services, tokens, keys table) {
	r := key(s.Seed, "webservices").rand()
	epoch := s.Epoch.Unix()
	installed := epoch - 3*365*86400
	services = table{name: "mdl_external_services", columns: []string{"id", "name", "enabled",
		"requiredcapability", "restrictedusers", "component", "timecreated", "timemodified", "shortname",
		"downloadfiles", "uploadfiles"}}
	services.rows = [][]any{
		{int64(1), "Moodle mobile web service", int16(1), nil, int16(0), "moodle", installed, installed, "moodle_mobile_app", int16(1), int16(1)},
		{int64(2), "SIS integration", int16(1), "", int16(1), nil, installed, installed, "sis_integration", int16(0), int16(0)},
	}
	tokens = table{name: "mdl_external_tokens", columns: []string{"id", "token", "privatetoken", "tokentype",
		"userid", "externalserviceid", "sid", "contextid", "creatorid", "iprestriction", "validuntil",
		"timecreated", "lastaccess", "name"}}
	n := max(1, s.Users/40)
	for i := 0; i < n; i++ {
		u := users[r.IntN(len(users))]
		created := between(r, u.timecreated, epoch)
		tokens.rows = append(tokens.rows, []any{int64(i + 1), randHex(r, 32), randString(r, 64, alnum), int16(0),
			u.id, int64(1), nil, int64(1), u.id, nil, int64(0), created, between(r, created, epoch),
			"mobile-" + randHex(r, 8)})
	}
	tokens.rows = append(tokens.rows, []any{int64(n + 1), randHex(r, 32), nil, int16(0), int64(adminID), int64(2),
		nil, int64(1), int64(adminID), "10.20.0.0/16", int64(0), installed, epoch - 600, "SIS sync"})
	keys = table{name: "mdl_user_private_key", columns: []string{"id", "script", "value", "userid", "instance",
		"iprestriction", "validuntil", "timecreated"}}
	for i := 0; i < max(1, s.Users/50); i++ {
		u := users[r.IntN(len(users))]
		keys.rows = append(keys.rows, []any{int64(i + 1), pick(r, []string{"rss", "core_calendar", "blog/rss"}),
			randHex(r, 32), u.id, nil, nil, nil, between(r, u.timecreated, epoch)})
	}
	return services, tokens, keys
}

func buildSmallTables(s Spec) []table {
	r := key(s.Seed, "small").rand()
	epoch := s.Epoch.Unix()
	installed := epoch - 3*365*86400
	empty := ""
	return []table{
		{name: "mdl_message_processors", columns: []string{"id", "name", "enabled"}, rows: [][]any{
			{int64(1), "airnotifier", int16(1)}, {int64(2), "email", int16(1)}, {int64(3), "popup", int16(1)},
		}},
		{name: "mdl_oauth2_issuer", columns: []string{"id", "timecreated", "timemodified", "usermodified", "name",
			"image", "baseurl", "clientid", "clientsecret", "loginscopes", "loginscopesoffline", "loginparams",
			"loginparamsoffline", "alloweddomains", "scopessupported", "enabled", "showonloginpage", "basicauth",
			"sortorder", "requireconfirmation", "servicetype", "loginpagename"}, rows: [][]any{
			{int64(1), installed, installed, int64(adminID), "Microsoft", "https://www.microsoft.com/favicon.ico",
				"", randHex(r, 8) + "-" + randHex(r, 4) + "-" + randHex(r, 4) + "-" + randHex(r, 4) + "-" + randHex(r, 12),
				randString(r, 40, alnum+"~_."), "openid profile email user.read", "offline_access", "", "",
				"example.ch", &empty, int16(1), int16(1), int16(0), int64(0), int16(1), "microsoft", "Login mit Microsoft"},
		}},
		{name: "mdl_payment_accounts", columns: []string{"id", "name", "idnumber", "contextid", "enabled",
			"archived", "timecreated", "timemodified"}, rows: [][]any{
			{int64(1), "Weiterbildung", "WB", int64(1), int16(1), int16(0), installed, installed},
		}},
		{name: "mdl_payment_gateways", columns: []string{"id", "accountid", "gateway", "enabled", "config",
			"timecreated", "timemodified"}, rows: [][]any{
			{int64(1), int64(1), "paypal", int16(1), fmt.Sprintf(`{"brandname":"Hochschule Example","clientid":"%s","secret":"%s","environment":"live"}`,
				randString(r, 80, alnum), randString(r, 80, alnum)), installed, installed},
		}},
	}
}

// logGen streams mdl_logstore_standard_log rows with ascending ids and times.
type logGen struct {
	spec    Spec
	r       *rand.Rand
	users   []user
	weights []int
	id      int64
	n       int64 // rows generated
	t, gap  int64
	start   int64
	end     int64
	row     []any
}

// newLogGen starts at id and time start; rows spread evenly up to end.
func newLogGen(s Spec, r *rand.Rand, users []user, id, start, end int64, rows int) *logGen {
	g := &logGen{spec: s, r: r, users: users, id: id, t: start, start: start, end: end, row: make([]any, len(logColumns))}
	for _, e := range logEvents {
		g.weights = append(g.weights, e.weight)
	}
	if rows > 0 {
		g.gap = (end - start) / int64(rows)
	}
	return g
}

func (g *logGen) next() []any {
	r := g.r
	// Row n falls in slot n of the period: times ascend and end near g.end.
	g.t = min(g.start+g.n*g.gap+r.Int64N(g.gap+1), g.end)
	g.n++
	e := logEvents[weighted(r, g.weights)]
	u := g.users[r.IntN(len(g.users))]
	var ctx, inst, courseid int64
	switch {
	case e.level == 10 || g.spec.Courses == 0:
		ctx, inst = 1, 0
	case e.level == 30:
		ctx, inst = g.spec.userCtx(u.id), u.id
	case e.level == 50:
		courseid = g.spec.randomCourse(r)
		ctx, inst = courseCtx(courseid), courseid
	default:
		courseid = g.spec.randomCourse(r)
		m := r.IntN(modulesPerCourse)
		ctx, inst = moduleCtx(courseid, m), courseModuleID(courseid, m)
	}
	level := int64(e.level)
	if ctx == 1 {
		level = 10
	}
	var objecttable any
	var objectid any
	if e.objecttable != "" {
		objecttable = e.objecttable
		objectid = int64(1 + r.IntN(500000))
	}
	var related any
	if e.other == "completion" || e.other == "graded" {
		related = g.users[r.IntN(len(g.users))].id
	}
	origin := []string{"web", "web", "web", "web", "web", "web", "web", "web", "ws", "cli"}[r.IntN(10)]
	ip := u.lastip
	if origin == "cli" {
		ip = ""
	}
	var realuser any
	if r.IntN(1000) == 0 {
		realuser = int64(adminID)
	}
	row := g.row
	row[0], row[1], row[2], row[3], row[4] = g.id, e.eventname, e.component, e.action, e.target
	row[5], row[6], row[7], row[8], row[9] = objecttable, objectid, e.crud, e.edulevel, ctx
	row[10], row[11], row[12], row[13], row[14] = level, inst, u.id, courseid, related
	row[15], row[16], row[17], row[18], row[19] = int16(0), g.other(e, u, courseid), g.t, origin, ip
	row[20] = realuser
	g.id++
	return row
}

var logColumns = []string{"id", "eventname", "component", "action", "target", "objecttable", "objectid",
	"crud", "edulevel", "contextid", "contextlevel", "contextinstanceid", "userid", "courseid",
	"relateduserid", "anonymous", "other", "timecreated", "origin", "ip", "realuserid"}

// other renders the event's "other" column the way Moodle's json_encode does.
func (g *logGen) other(e logEvent, u user, courseid int64) string {
	r := g.r
	switch e.other {
	case "login":
		return `{"username":"` + u.username + `","extrauserinfo":[]}`
	case "sid":
		return `{"sessionid":"` + randString(r, 26, "abcdefghijklmnopqrstuvwxyz0123456789") + `"}`
	case "forum":
		return fmt.Sprintf(`{"forumid":"%d"}`, 1+r.IntN(5000))
	case "post":
		return fmt.Sprintf(`{"discussionid":"%d","forumid":"%d","forumtype":"general"}`, 1+r.IntN(50000), 1+r.IntN(5000))
	case "assign":
		return fmt.Sprintf(`{"assignid":%d}`, 1+r.IntN(5000))
	case "upload":
		return `{"content":"","pathnamehashes":["` + randHex(r, 40) + `"]}`
	case "quiz":
		return fmt.Sprintf(`{"submitterid":"%d","quizid":"%d"}`, u.id, 1+r.IntN(3000))
	case "completion":
		return fmt.Sprintf(`{"relateduserid":%d,"overrideby":null,"completionstate":%d}`, u.id, r.IntN(3))
	case "notification", "grades":
		return fmt.Sprintf(`{"courseid":"%d"}`, max(courseid, 1))
	case "message":
		return fmt.Sprintf(`{"courseid":"1","conversationid":%d}`, 1+r.IntN(100000))
	case "calendar":
		return fmt.Sprintf(`{"repeatid":0,"timestart":%d,"name":"%s"}`, g.t+int64(r.IntN(30*86400)), pick(r, subjects))
	case "config":
		return fmt.Sprintf(`{"name":"%s","oldvalue":"%d","value":"%d","plugin":null}`, pick(r, []string{"maxbytes", "sessiontimeout", "forcelogin", "theme"}), r.IntN(100), r.IntN(100))
	case "graded":
		return fmt.Sprintf(`{"finalgrade":%d.%d,"itemid":%d,"overridden":false}`, r.IntN(100), r.IntN(10), 1+r.IntN(90000))
	}
	return "null"
}

package moodlegen

import (
	"strconv"
	"strings"
)

// Read-only vocabularies. Names include non-ASCII letters and an apostrophe
// on purpose: dumps and restores must carry them unchanged.

var words = strings.Fields(`
the of and to in is for on with as by this that from at be are it an or which
course lecture exercise solution assignment submission deadline grade feedback
quiz question answer chapter section module lesson week semester exam project
group forum discussion topic resource page folder file upload download student
teacher tutor credit learning outcome objective introduction summary example
theory practice method analysis result data model function variable equation
proof lemma theorem definition system process structure design evaluation report
presentation reading literature source reference history language culture
society economics management marketing finance accounting law contract market
biology chemistry physics mathematics statistics probability algebra geometry
programming algorithm database network security interface software hardware
die der und zu den das nicht von sie ist des sich mit dem dass er es ein ich auf
so eine auch als an nach wie im für Vorlesung Übung Aufgabe Lösung Prüfung
Woche Kapitel Abgabe Bewertung Rückmeldung Skript Folien Unterlagen Literatur
le la les de des et en un une du est pour que dans qui sur pas au plus par cours
exercice devoir réponse examen semaine chapitre évaluation résumé également
il di che e la per un in con non una sono corso lezione esercizio esame settimana
`)

var firstNames = strings.Fields(`
Anna Luca Noah Mia Elena Lukas Sophie Matteo Léa Jonas Laura Gabriel Sara Tim Nina
Marco Chiara David Lea Julien Camille Nicolas Emma Louis Alessandro Giulia Fabian
Jana Simon Céline Yannick Aline Samuel Lara Raphael Selina Nora Leon Lina Elias Zoe
Ben Mila Levin Timo Andrea Mehmet Ayşe Arjun Priya Wei Mei Olga Dmitri Fatima Omar
Ana João Björn Ingrid Chloé Noé Loïc Anaïs Jérôme Zoë Søren Małgorzata Đorđe Niamh
`)

var lastNames = []string{
	"Müller", "Meier", "Schmid", "Keller", "Weber", "Huber", "Schneider", "Meyer",
	"Steiner", "Fischer", "Gerber", "Brunner", "Baumann", "Frei", "Zimmermann", "Moser",
	"Widmer", "Wyss", "Graf", "Roth", "Rochat", "Favre", "Bonvin", "Rossi", "Bernasconi",
	"Ferrari", "Bianchi", "Dubois", "Girard", "Morel", "Fontana", "Lehmann", "Bühler",
	"Kälin", "Nguyen", "Yılmaz", "da Silva", "O'Brien", "García", "Kowalski", "Novák",
	"Jovanović", "Berisha", "Krasniqi", "Häberli", "Zürcher", "Lüthi", "Gächter",
}

var cities = []string{
	"Zürich", "Bern", "Basel", "Genève", "Lausanne", "Luzern", "St. Gallen", "Lugano",
	"Winterthur", "Biel/Bienne", "Thun", "Fribourg", "Neuchâtel", "Chur", "Sion", "Zug",
}

var subjects = []string{
	"Mathematik", "Analysis", "Lineare Algebra", "Statistik", "Introduction to Programming",
	"Datenbanken", "Software Engineering", "Computer Networks", "Wirtschaftsrecht",
	"Betriebswirtschaftslehre", "Rechnungswesen", "Marketing", "Français", "English for Academics",
	"Italiano", "Organic Chemistry", "Physik", "Biologie", "Geschichte der Schweiz", "Philosophie",
	"Projektmanagement", "Didaktik", "Pflegewissenschaft", "Anatomie", "Machine Learning",
	"IT-Sicherheit", "Webentwicklung", "Volkswirtschaftslehre", "Soziologie", "Psychologie",
}

// translit folds the letters of the name lists to ASCII for usernames.
var translit = strings.NewReplacer(
	"ä", "ae", "ö", "oe", "ü", "ue", "Ä", "Ae", "Ö", "Oe", "Ü", "Ue", "é", "e", "è", "e",
	"ê", "e", "ë", "e", "à", "a", "â", "a", "ç", "c", "ï", "i", "î", "i", "ô", "o", "ã", "a",
	"ş", "s", "ı", "i", "ø", "o", "ł", "l", "đ", "d", "Đ", "D", "ć", "c", "á", "a", "í", "i",
	"ó", "o", "ú", "u", "ñ", "n", "'", "", " ", "", "ö", "oe", "å", "a",
)

// usernameFor builds an ASCII username such as "anna.mueller3".
func usernameFor(first, last string, n int) string {
	u := strings.ToLower(translit.Replace(first) + "." + translit.Replace(last))
	if n > 0 {
		u += strconv.Itoa(n)
	}
	return u
}

// scheduledTasks is a realistic selection of Moodle 4.5 scheduled tasks
// (lib/db/tasks.php and common plugins): component, classname, minute,
// hour, day, month, dayofweek.
var scheduledTasks = [][7]string{
	{"moodle", `\core\task\session_cleanup_task`, "*", "*", "*", "*", "*"},
	{"moodle", `\core\task\delete_unconfirmed_users_task`, "0", "*", "*", "*", "*"},
	{"moodle", `\core\task\delete_incomplete_users_task`, "5", "*", "*", "*", "*"},
	{"moodle", `\core\task\backup_cleanup_task`, "10", "*", "*", "*", "*"},
	{"moodle", `\core\task\tag_cron_task`, "R", "3", "*", "*", "*"},
	{"moodle", `\core\task\context_cleanup_task`, "25", "*", "*", "*", "*"},
	{"moodle", `\core\task\cache_cleanup_task`, "30", "*", "*", "*", "*"},
	{"moodle", `\core\task\messaging_cleanup_task`, "35", "*", "*", "*", "*"},
	{"moodle", `\core\task\send_new_user_passwords_task`, "*", "*", "*", "*", "*"},
	{"moodle", `\core\task\send_failed_login_notifications_task`, "*", "*", "*", "*", "*"},
	{"moodle", `\core\task\create_contexts_task`, "0", "0", "*", "*", "*"},
	{"moodle", `\core\task\grade_cron_task`, "*", "*", "*", "*", "*"},
	{"moodle", `\core\task\grade_history_cleanup_task`, "*", "23", "*", "*", "*"},
	{"moodle", `\core\task\completion_regular_task`, "*", "*", "*", "*", "*"},
	{"moodle", `\core\task\completion_daily_task`, "R", "R", "*", "*", "*"},
	{"moodle", `\core\task\portfolio_cron_task`, "*", "*", "*", "*", "*"},
	{"moodle", `\core\task\plagiarism_cron_task`, "*", "*", "*", "*", "*"},
	{"moodle", `\core\task\calendar_cron_task`, "*", "*", "*", "*", "*"},
	{"moodle", `\core\task\blog_cron_task`, "*", "*", "*", "*", "*"},
	{"moodle", `\core\task\question_preview_cleanup_task`, "R", "R", "*", "*", "*"},
	{"moodle", `\core\task\registration_cron_task`, "R", "R", "*", "*", "R"},
	{"moodle", `\core\task\check_for_updates_task`, "0", "*/2", "*", "*", "*"},
	{"moodle", `\core\task\cache_cron_task`, "50", "*", "*", "*", "*"},
	{"moodle", `\core\task\automated_backup_task`, "50", "*", "*", "*", "*"},
	{"moodle", `\core\task\badges_cron_task`, "*/5", "*", "*", "*", "*"},
	{"moodle", `\core\task\file_temp_cleanup_task`, "55", "*/6", "*", "*", "*"},
	{"moodle", `\core\task\file_trash_cleanup_task`, "55", "*/6", "*", "*", "*"},
	{"moodle", `\core\task\search_index_task`, "*/30", "*", "*", "*", "*"},
	{"moodle", `\core\task\stats_cron_task`, "0", "0", "*", "*", "*"},
	{"moodle", `\core\task\password_reset_cleanup_task`, "0", "*/6", "*", "*", "*"},
	{"moodle", `\core\task\task_log_cleanup_task`, "R", "R", "*", "*", "*"},
	{"moodle", `\core\task\h5p_get_content_types_task`, "R", "R", "R", "*", "*"},
	{"moodle", `\core\oauth2\refresh_system_tokens_task`, "30", "*", "*", "*", "*"},
	{"moodle", `\core\task\analytics_cleanup_task`, "42", "*", "*", "*", "*"},
	{"auth_ldap", `\auth_ldap\task\sync_task`, "0", "0", "*", "*", "*"},
	{"enrol_database", `\enrol_database\task\sync_enrolments`, "R", "*", "*", "*", "*"},
	{"tool_messageinbound", `\tool_messageinbound\task\pickup_task`, "*", "*", "*", "*", "*"},
	{"logstore_standard", `\logstore_standard\task\cleanup_task`, "R", "3", "*", "*", "*"},
	{"mod_forum", `\mod_forum\task\cron_task`, "*", "*", "*", "*", "*"},
	{"mod_assign", `\mod_assign\task\cron_task`, "*", "*", "*", "*", "*"},
}

// logEvent describes one kind of mdl_logstore_standard_log row.
type logEvent struct {
	eventname, component, action, target, objecttable, crud string
	edulevel                                                int16
	level                                                   int // 10 system, 30 user, 50 course, 70 module
	weight                                                  int
	other                                                   string // template; see otherFor
}

var logEvents = []logEvent{
	{`\core\event\course_viewed`, "core", "viewed", "course", "", "r", 2, 50, 30, "null"},
	{`\mod_resource\event\course_module_viewed`, "mod_resource", "viewed", "course_module", "resource", "r", 2, 70, 18, "null"},
	{`\mod_page\event\course_module_viewed`, "mod_page", "viewed", "course_module", "page", "r", 2, 70, 8, "null"},
	{`\core\event\user_loggedin`, "core", "loggedin", "user", "user", "r", 0, 10, 8, "login"},
	{`\core\event\user_loggedout`, "core", "loggedout", "user", "user", "r", 0, 10, 3, "sid"},
	{`\core\event\dashboard_viewed`, "core", "viewed", "dashboard", "", "r", 0, 30, 7, "null"},
	{`\mod_forum\event\discussion_viewed`, "mod_forum", "viewed", "discussion", "forum_discussions", "r", 2, 70, 6, "forum"},
	{`\mod_forum\event\post_created`, "mod_forum", "created", "post", "forum_posts", "c", 2, 70, 2, "post"},
	{`\mod_assign\event\submission_status_viewed`, "mod_assign", "viewed", "submission_status", "", "r", 0, 70, 4, "assign"},
	{`\assignsubmission_file\event\assessable_uploaded`, "assignsubmission_file", "uploaded", "assessable", "assign_submission", "c", 2, 70, 2, "upload"},
	{`\mod_quiz\event\attempt_started`, "mod_quiz", "started", "attempt", "quiz_attempts", "c", 2, 70, 2, "quiz"},
	{`\mod_quiz\event\attempt_submitted`, "mod_quiz", "submitted", "attempt", "quiz_attempts", "u", 2, 70, 2, "quiz"},
	{`\core\event\course_module_completion_updated`, "core", "updated", "course_module_completion", "course_modules_completion", "u", 2, 70, 3, "completion"},
	{`\gradereport_user\event\grade_report_viewed`, "gradereport_user", "viewed", "grade_report", "", "r", 2, 50, 2, "grades"},
	{`\core\event\user_profile_viewed`, "core", "viewed", "user_profile", "user", "r", 0, 30, 2, "null"},
	{`\core\event\notification_sent`, "core", "sent", "notification", "notifications", "c", 0, 10, 3, "notification"},
	{`\core\event\message_sent`, "core", "sent", "message", "messages", "c", 0, 10, 1, "message"},
	{`\core\event\calendar_event_created`, "core", "created", "calendar_event", "event", "c", 0, 50, 1, "calendar"},
	{`\core\event\config_log_created`, "core", "created", "config_log", "config_log", "c", 0, 10, 1, "config"},
	{`\core\event\user_graded`, "core", "graded", "user", "grade_grades", "u", 2, 50, 1, "graded"},
}

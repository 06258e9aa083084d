// Package staging refreshes staging copies of Moodle sites and makes side
// restores, both through Jelastic clones plus a replay of a snapshot, and
// makes such copies safe to use.
//
// A staging refresh (Refresh) clones production's Jelastic environment
// when the staging environment is missing (or on request, after deleting
// it), points the copy's config.php at its own database and URL with
// e-mail off, closes it with Moodle's climaintenance.html, replays the
// chosen snapshot into its database and moodledata with restore.InPlace
// (the restore code, never a copy of it), sanitizes the database, removes
// what it must not share with production (muc/config.php, production's
// SAML key pair, caches, sessions), restarts its application nodes and
// opens it again. A side restore (SideRestore) does the same into a new
// environment whose addresses DeriveClone derives from production's.
//
// # Safety
//
// Production is never written: no step receives production's database
// or folders as a target; they are only compared with the copy's (a copy
// sharing production's Jelastic environment, database, moodledata,
// config.php or wwwroot host is refused with a *RefusedError before
// anything happens) and production's config.php is only read. A fresh
// clone runs, with production's config.php, against production's
// database (jelastic-api §5, H1/H2): the copy's config.php and then its
// climaintenance.html are therefore the first things written after the
// clone, and the rewritten config.php is read back and checked (never
// production's database or moodledata) before anything else happens.
// Maintenance mode stays on until the copy is sanitized. A run that fails
// after touching the copy reports Status "broken" and replaces the copy's
// climaintenance.html with a page saying so.
//
// # config.php
//
// RewriteConfigPHP sets wwwroot, dbhost, dbname, dbuser (dbpass when the
// copy's password is known; its value is never printed),
// dboptions['dbport'], dataroot when it named production's folder,
// noemailever (or divertallemailsto and divertallemailsexcept),
// site_is_public = false, preventscheduledtaskchanges = true and
// scheduled_tasks (every task disabled except the allow-list). config.php
// settings win over the database, so these hold even if the database
// says otherwise. It replaces assignments where they are and adds the
// missing ones in a commented block before the require of lib/setup.php;
// it is idempotent. The copy's config.php is written through its local
// path when the configuration names one (staging.config_php; atomically,
// keeping mode and owner), else through the Jelastic file API on the cp
// node (DefaultRemoteConfigPHP).
//
// # Database
//
// Sanitize works in one transaction and skips, saying so, tables and
// columns an older Moodle lacks. Cron stays enabled so that the
// housekeeping tasks of DefaultAllowedTasks keep the copy tidy; every
// other scheduled task is disabled and marked customised (a Moodle
// upgrade, the usual reason for a staging copy, resets non-customised
// tasks to their defaults). moodle-ops §4 lists the hazards behind each
// statement.
//
// Not done: anonymising users, pointing smtphosts at a mail sink (no sink
// is configured; noemailever or the divert is the switch), running
// Moodle's purge_caches.php (the cache folders are emptied and the app
// nodes restarted instead), and uninstalling backup add-ons the platform
// re-installs on a clone (hazard H3).
package staging

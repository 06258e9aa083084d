// Package config loads the mbackup fleet configuration (mbackup.yaml): where
// the repository is, how to reach Jelastic, the defaults, and every Moodle
// environment with its optional staging copy, plus the settings of the
// scheduled service (concurrency, retries, maintenance, notifications).
//
// Find implements the lookup order (--config, $MBACKUP_CONFIG,
// ./mbackup.yaml, /etc/mbackup/mbackup.yaml). Load parses the file through
// yaml.Node so that every problem is an *Error of one line naming the file,
// line and key, with a fix; a file with several problems yields Errors, one
// line each. Unknown keys and wrong types are errors. The CLI exits with
// status 2 for these (IsConfigError) and 1 for I/O failures.
//
// # Values
//
//   - ${VAR} in any scalar value is replaced by the environment variable VAR;
//     an unset variable is an error (an empty one expands to ""). Only the
//     braced form is expanded: a lone $ or $VAR stays as written, and $${
//     writes a literal ${.
//   - A null value (key: with nothing after it, or ~) means "not set".
//   - Relative filesystem paths are relative to the configuration file's
//     folder.
//   - Schedules use robfig/cron syntax (CronParser): 5 fields, descriptors
//     such as @daily or @every 6h, an optional CRON_TZ= prefix; "off"
//     disables a schedule inherited from defaults. Specs without CRON_TZ run
//     in timezone.
//   - YAML anchors, aliases and merge keys (<<: *name) work.
//
// # Defaults and environments
//
// Every key of defaults (schedule, retention, exclude, exclude_add) may be
// set per environment. Config.Env returns an environment already merged:
// schedule is the environment's if set, else the default; retention is
// merged field by field; exclude replaces the default list (which is
// DefaultExclude unless defaults.exclude is set), and exclude_add appends to
// whichever list applies, at either level.
//
// # Safety checks
//
// Load refuses configurations that would let one operation destroy another
// site's data: no two sites (environments or staging copies) may share a
// database (same host and port, local socket and loopback counting as one,
// same name), a moodledata folder (also nested), a config.php or a Jelastic
// environment. It checks that production moodledata folders and config.php
// files exist unless SkipPathChecks is given.
//
// # Secrets
//
// Secrets are never read by Load and never stored in Config: the accessors
// (RepositoryPassword, S3Credentials, JelasticToken, SMTPPassword,
// Environment.DatabasePassword) read them on demand, from a file (one
// trailing newline removed) or an environment variable, and return a Secret,
// which prints as [redacted] in every format. Error messages never contain a
// secret; a password embedded in a database URL is kept apart from
// Database.ConnString. Load returns warnings (Config.Warnings) for a
// configuration or secret file that group or others may read.
package config

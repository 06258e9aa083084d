// Package snapshot takes and reads snapshots of Moodle environments.
//
// A snapshot is one environment (one Moodle site) at one moment. Its root
// tree in the repository holds:
//
//	database.pgdump   the PostgreSQL dump (pg_dump -Fc -Z0), streamed
//	moodledata/       the moodledata folder minus regenerable folders
//	config.php        the site's config.php, when configured
//
// and its metadata (the Manifest) records the environment, versions of the
// server, pg_dump and Moodle, per-table row counts taken in the dump's own
// snapshot, and per-source statistics.
//
// The database is dumped first and the files copied afterwards: Moodle
// writes file content before the database row and moves content to
// trashdir only after the row is deleted, so every file the dump refers to
// is in filedir or trashdir when the copy runs (moodle-ops §3). Both are
// therefore kept.
package snapshot

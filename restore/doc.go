// Package restore puts a snapshot of a Moodle environment back: in place
// (into the environment it came from), into another configured environment,
// or into a folder.
//
// An in-place restore is built so that a failure at any point before the
// final switch leaves production exactly as it was:
//
//  1. Maintenance mode: climaintenance.html is written into moodledata, so
//     Moodle answers 503 and cron stops, for the whole restore.
//  2. The dump is restored into a fresh database next to production
//     (<name>_restore_<timestamp>), with --no-owner --no-privileges and
//     SET ROLE to the production database's owner, in parallel when the
//     dump is large; then ANALYZE, and the row count of every table is
//     compared with the counts recorded at backup time. Moodle's
//     maintenance_enabled flag captured in the dump is cleared.
//  3. moodledata is staged by package restorer: only files whose content
//     differs are fetched, into temporary names, and read back and checked.
//  4. Only now: the databases are swapped in one transaction (production
//     becomes <name>_before_restore_<timestamp>, kept for the operator to
//     drop), the staged files are renamed into place and files the snapshot
//     lacks are removed; cache and localcache are emptied; maintenance mode
//     is switched off.
//
// Any failure in steps 1–3 drops the new database, removes the staged
// files and switches maintenance mode off again if the restore switched it
// on. The snapshot being restored is pinned for the duration, so a
// concurrent forget cannot remove it.
package restore

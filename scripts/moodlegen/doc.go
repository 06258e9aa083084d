// Package moodlegen generates Moodle-like environments (a PostgreSQL
// database, a moodledata folder and a config.php) for the demo, the
// integration tests and the benchmarks of mbackup.
//
// Everything is derived from a [Spec] and its seed: two runs with the same
// Spec produce byte-identical file content, identical modes and mtimes, and
// databases with identical rows in identical physical order. The database and
// the moodledata folder are generated independently but agree: every
// mdl_files.contenthash of non-empty content exists as
// moodledata/filedir/xx/yy/<sha1>, because both sides derive the content of
// file number k from the same seeded stream.
//
// The generated data imitates what matters to a backup tool, not Moodle
// itself: a log table that dominates the database and changes by appending,
// deleting its oldest rows and little else; content-addressed, write-once
// files whose sizes follow a log-normal law; a mix of compressible text and
// incompressible media; regenerable junk (cache, localcache, temp, sessions,
// lock) next to small folders that must be kept (lang, secret, muc, models,
// saml2, repository), symlinks, an empty folder and varied file modes.
// [Mutate] then simulates one day of use, so that tests can back up, change,
// back up again and restore to an earlier state.
//
// [TreeDigest] and [DatabaseDigest] give exact, order-independent
// fingerprints so that tests can assert "restored == original".
//
// Determinism holds for one Go toolchain: math/rand/v2 does not promise the
// same value streams across Go releases.
package moodlegen

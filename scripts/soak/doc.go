// Command soak is a bounded soak test of mbackup's engine, snapshot and
// restore code under injected faults, on loopback only. It stops by
// itself and prints what it did:
//
//	go run ./scripts/soak                 # 200 backups of 5 environments, prune every 20
//	go run ./scripts/soak --backups 40    # a quick run
//
// Setup: a local S3 server (versitygw, started on a free loopback port, or
// the one named by MBACKUP_TEST_S3_ENDPOINT) reached through a fault proxy
// (engine/backend/faultproxy), under a fault backend
// (engine/backend/fault) and the retry backend that production uses with
// shorter waits. Five Moodle-like environments are generated with
// moodlegen in the local PostgreSQL.
//
// Loop: each backup picks the next environment, applies a simulated day
// of changes (moodlegen's Mutate), records the state (an order-independent
// digest of every database row, sequence and schema object, and a hash of
// every moodledata file), and backs it up while faults fire at random:
// S3 503 and 500 answers, connections reset in the middle of a transfer,
// stalls, short outages of the whole server, failed and torn writes and
// failed reads. Each committed snapshot is restored at once (with the
// faults still firing) into a folder, its db.sql is loaded with psql into
// a scratch database, and both are compared with the recorded state.
// Every --prune-every backups the oldest snapshots beyond --keep per
// environment are forgotten and prune runs, through its own repository
// handle, concurrently with the next backups. At the end the faults stop,
// a last prune runs, check --read-data must pass, and every snapshot still
// in the repository is restored and compared again.
//
// Bytes lost is the content size of every snapshot that was committed but
// did not restore exactly (or vanished without being forgotten); it must
// be 0. A backup whose faults outlasted the retries is not a loss: it
// commits nothing and is counted as failed. The exit status is 0 when
// nothing was lost and check passed, 1 otherwise, 2 for bad flags or
// missing prerequisites. --out also writes the figures as markdown.
package main

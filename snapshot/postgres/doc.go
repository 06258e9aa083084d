// Package postgres is mbackup's side of PostgreSQL: connecting with a
// configured URL and password without ever putting the password on a
// command line, reading server facts, counting rows, and running pg_dump,
// pg_restore and psql as child processes whose failures become clear
// errors.
//
// Dumps use the custom format without compression (pg_dump -Fc -Z0): the
// engine compresses after deduplication, which keeps night-over-night
// changes small (a compressed dump changes completely every night), and
// the custom format lets pg_restore run in parallel, apply --no-owner and
// --no-privileges at restore time, and still produce plain SQL for
// `restore --target-dir`.
package postgres

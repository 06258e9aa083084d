// Package pgtest starts throwaway PostgreSQL servers that check passwords
// (scram-sha-256 for every connection), for the tests of how mbackup
// authenticates. The shared test server trusts every local connection, so
// a password sent the wrong way, or not at all, would go unnoticed there;
// the databases of Jelastic's nodes always ask for one.
//
// A server is initialised with initdb in a temporary folder and runs as a
// child of the test (as the postgres user when the test runs as root,
// since PostgreSQL refuses to run as root), on a free loopback port; it
// is stopped and removed when the test ends. The programs are found in
// MBACKUP_TEST_PG_BIN, else in the newest /usr/lib/postgresql/*/bin
// (Debian's layout), else on PATH.
package pgtest

// Package jelasticsim is a local simulator of the Jelastic REST API subset
// mbackup uses, backed by real folders and a real PostgreSQL server, so
// that clone, staging and restore code can be exercised end to end without
// a hosting account. It is an http.Handler: run it in-process under
// net/http/httptest, or through the cmd/jelastic-sim binary.
//
// # Environments
//
// An environment NAME is the folder ROOT/NAME/ (holding moodledata/ and
// www/config.php) plus the database NAME with "-" replaced by "_" on the
// PostgreSQL server the simulator is given. Environments are discovered
// from the folders under ROOT at startup and on every request, so an
// operator creates one by making a folder. Names are 1 to 64 ASCII letters,
// digits and hyphens, starting with a letter or digit; other folders and
// hidden entries are ignored. Per-environment state (status, appid, node
// ids, restart counters) lives in ROOT/NAME/.jelastic-sim.json, written
// atomically, so it survives restarts. Every environment has two nodes: a
// cp node (nodeType apache2) and a sqldb node (nodeType postgres15); both
// map to the environment folder.
//
// # API
//
// Routes are /1.0/<group>/<service>/rest/<method>, matched
// case-insensitively, with parameters from the query string and the form
// body (url-encoded or multipart) and case-insensitive parameter names.
// Every answer is HTTP 200 with a JSON envelope {"result":N,...}:
//
//	users/authentication   signin, signout
//	users/account          getuserinfo
//	environment/control    getenvs, getenvinfo, cloneenv, startenv, stopenv,
//	                       sleepenv, deleteenv, execcmdbygroup, execcmdbyid,
//	                       restartnodes
//	environment/file       read, write
//
// Result codes (the platform's where known, see the jelastic package):
//
//	3     a required parameter is missing or invalid ("invalid parameter [x]")
//	4     a node, node group or file does not exist
//	5     unknown service (path not of the /1.0/<group>/<service>/rest/<method> form)
//	6     unknown method in a known service
//	9     operation not permitted: cloneenv to an existing environment (or
//	      onto an existing database), or exec / file / restart on an
//	      environment that is not running. The platform's code for these is
//	      undocumented; 9 is its generic "operation not permitted".
//	11    the environment does not exist: "application [NAME] not exist"
//	99    internal failure (copy, database, state file), with the cause
//	701   signin with a wrong login or password
//	702   missing or unknown session (token or signin session)
//	801   deleteenv with a wrong confirmation password (accepted: the
//	      environment name, or the configured account password)
//	4109  an exec command exited non-zero; per-node responses carry result
//	      4109, exitStatus, out and errOut
//
// Status changes are synchronous and idempotent: startenv sets 1
// (running), stopenv 2 (stopped), sleepenv 4 (sleeping). cloneenv copies
// the folder (modes, mtimes and symlinks preserved, ownership when running
// as root) and the database (CREATE DATABASE ... TEMPLATE, after
// terminating the source's other connections as the platform freezes the
// source) and returns the running clone. Like the platform, it copies
// config.php unchanged, so the clone still points at the source database.
// A failed clone removes what it created. deleteenv drops the database
// (WITH (FORCE)) and removes the folder.
//
// execcmdbygroup and execcmdbyid run each command of the commandList JSON
// array as `sh -c "<command> <params>"` in the environment folder, for
// the cp and sqldb groups alike, with MOODLE_ENV, PGDATABASE, PGHOST,
// PGPORT, PGUSER (and PGPASSWORD when the PostgreSQL URL has one) plus
// JELASTIC_NODE_ID and JELASTIC_NODE_GROUP set. The commands of one request
// share a time limit and their captured output is capped.
//
// restartnodes increments the node's restarts counter and sets lastRestart
// (RFC 3339), both visible in the state file and in getenvinfo's nodes.
//
// file read and write act on the environment folder: a path is taken
// relative to it, with the platform's /var/www/webroot/ROOT and
// /var/www/webroot/moodledata mapped to www and moodledata.
//
// The token and passwords are never logged; request logs carry the method,
// environment, result code and duration.
package jelasticsim

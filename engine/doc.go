// Package engine is mbackup's repository engine: a deduplicated,
// compressed, encrypted store of blobs, trees and snapshots on top of a
// Backend (a local folder or an S3 bucket). It knows nothing of Moodle or
// PostgreSQL; the snapshot package above it decides what goes in.
//
// # Data model
//
// Content is cut into blobs by content-defined chunking (Rabin
// fingerprints, github.com/restic/chunker, with a random polynomial per
// repository), so an edit in the middle of a stream changes only the chunks
// around it. A blob's ID is a keyed hash of its plaintext (package crypto);
// a blob already in the repository is never stored again, whichever
// environment or night it came from. Blobs are zstd-compressed when that
// pays, sealed with AES-256-GCM and collected into pack files of about
// 16 MiB (package pack). Index files map blobs to packs (package index).
// Trees (package tree) describe folders; a Snapshot names a root tree and
// carries the caller's metadata.
//
// # Repository layout
//
//	config            sealed JSON: version, ID, chunker polynomial and sizes
//	keys/<id>         master key wrapped by a password-derived key (scrypt)
//	data/<xx>/<id>    packs, sharded by the first two hex digits
//	index/<id>        sealed index files
//	snapshots/<id>    sealed snapshots: the commit points
//	locks/<id>        sealed announcements of running writers and prunes
//	tombstones/<id>   sealed lists of packs that prune marked for deletion
//
// Every file except the key files is sealed under the master key. Index,
// snapshot, tombstone and key files are named by the SHA-256 of their
// stored bytes; packs by the SHA-256 of their sealed header, which commits to
// every blob in them (package pack).
//
// # Writing and crash safety
//
// Files are only ever created whole (Backend.Save is atomic) and deleted;
// nothing is modified in place. A writer stores packs first, then the index
// files that describe them, then the snapshot that references them; the
// snapshot is the single commit point. A crash or failure at any moment
// leaves at worst packs and index entries that no snapshot references,
// which check reports as unreferenced and prune removes. A writer session
// whose pack upload failed refuses to commit.
//
// # Concurrency
//
// A Repository is safe for concurrent use: several backups in one process
// share its index, packers and upload workers, so they deduplicate against
// each other. Backups in other processes (a second appliance) write to the
// same repository without waiting for anyone; see Session for how writers
// cooperate with prune.
package engine

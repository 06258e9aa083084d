// Package restorer writes a snapshot's tree into a folder, exactly and
// safely.
//
// A restore runs in three phases:
//
//  1. Plan: the snapshot tree is compared with what the folder holds. A
//     file whose size matches is hashed (chunked and keyed-hashed like at
//     backup time, in parallel) and left alone when its content is equal,
//     so restoring over a nearly identical folder writes only what
//     differs. Entries the snapshot lacks are scheduled for deletion when
//     Options.Delete is set; excluded paths are never touched.
//  2. Stage: every file to write goes to a temporary name next to its
//     final place (new folders are built whole under a temporary name).
//     Blobs are fetched pack by pack with parallel workers, each pack once
//     with one ranged read however many files need it, and written at
//     their offsets. The staged data is flushed to disk and, with
//     Options.Verify, read back and checked against the snapshot.
//  3. Commit: temporary names are renamed into place, deletions run, and
//     modes, owners and times are set.
//
// A failure or cancellation before the commit removes what was staged and
// leaves the folder exactly as it was; only a crash during the commit's
// renames (seconds, no data transfer) can leave a mix, which running the
// same restore again repairs.
package restorer

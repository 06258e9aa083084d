// Package prune deletes data that no snapshot references, without ever
// making a backup wait.
//
// # Protocol
//
// Backups do not take locks that prune waits for, and prune takes none that
// backups wait for. Instead, deletion happens in two phases separated by
// the lifetime of the writers that might still rely on the old state:
//
// Mark. Prune loads the index and every snapshot, and finds the blobs that
// the snapshots reference. Packs with no referenced blob, packs in no index
// (left by crashed backups), and packs whose unreferenced share exceeds the
// threshold (after their referenced blobs were copied, still sealed, into
// new packs) are marked. Prune writes index files describing everything
// kept, then a provisional tombstone naming the marked packs, deletes the
// index files it read, and only then lists the writer sessions that are
// alive. It records the marked packs and those sessions in a tombstone,
// and removes the provisional one. The marked packs stay in storage.
//
// Why the provisional tombstone: a snapshot committed while prune marks
// may reference blobs in marked packs. From the moment the index files
// naming them are gone until prune's recheck (below) has put them back,
// the provisional tombstone is where its writer, a restore, or the next
// prune (should this one die) finds them.
//
// Why that order: a writer announces its session (a lock file) before it
// reads the index. A writer missing from the list started after the old
// index files were gone, so it never saw the marked packs and cannot
// reference their blobs. A writer on the list may have read them and
// deduplicated against them.
//
// Sweep. A tombstone is swept once none of its sessions is alive (they
// ended, or their lock went stale, and a writer whose lock went stale
// refuses to commit, see engine.Session). A lock file is stale when it was
// not refreshed for engine.LockStale, when its process on this host is
// gone, or when the Repository prune runs on closed that session itself
// (a long-running service whose lock removal failed); prune deletes stale
// lock files as it meets them. Before deleting anything, prune
// loads all snapshots again, including those committed meanwhile, and any
// marked pack that holds a blob they reference is recovered: put back into
// the index instead of deleted. Marked packs that are indexed again
// (recovered by a writer, see below) are kept too. Then the remaining marked
// packs are deleted, and the tombstone last.
//
// Writers help: after committing a snapshot, a writer that sees a tombstone
// checks its snapshot against the index and recovers the marked packs it
// needs at once, so check never sees a snapshot with missing data, and
// prune's own recheck right after marking covers writers that committed
// while it marked. A restore session does the same for the snapshot it
// pins before reading it.
//
// When no writer is alive at marking time (the usual nightly case), the
// sweep follows immediately in the same run. Otherwise it happens at the
// next prune, or in the same run with Options.Wait. Backups never wait;
// the only cost of a backup running during prune is that some space is
// freed one prune later.
//
// # Crash safety
//
// Every step writes new files before deleting old ones: repacked packs
// before the index naming them, new index files before deleting those they
// replace, the tombstone before sweeping, packs before their tombstone. A
// prune killed at any point leaves a repository that check accepts (at
// worst with unindexed packs or overlapping index files), and the next
// prune finishes the job: an interrupted sweep is resumed from its
// tombstone; packs marked by a prune that died before writing its
// complete tombstone are recovered from the provisional one if a snapshot
// needs them, and otherwise found again as unindexed packs and marked
// anew, after which the provisional tombstone is removed. It is never
// swept itself: the writers that might use its packs were not recorded.
//
// Two prunes never run at once: prune announces itself with a lock of kind
// "prune" and backs off when it finds another live one.
package prune

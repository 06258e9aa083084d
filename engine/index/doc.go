// Package index maps blob IDs to their place in packs.
//
// Index holds the map in memory in a compact open-addressing table: 48
// bytes per blob for the entry (ID, pack number, offset, lengths, flags)
// plus 4 to 11 bytes of bucket array depending on the load factor, with no
// per-entry pointers for the garbage collector to chase. Entries live in
// fixed-size pages, so growing never copies them and never needs twice the
// memory.
//
// File is the stored form: a list of packs with their blobs, in a compact
// binary encoding (uvarints) that the repository compresses and encrypts.
// A repository has many index files; they may overlap, and an index file
// may declare that it supersedes others, which prune then deletes.
package index

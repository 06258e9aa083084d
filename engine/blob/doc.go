// Package blob defines the identifiers shared by every layer of the
// repository engine: the 256-bit ID that names blobs and repository files,
// and the blob types.
//
// A blob's ID is a keyed hash of its plaintext (see package crypto), so equal
// content gets equal IDs inside one repository, which is what deduplication
// rests on, while the storage provider cannot confirm that a repository holds
// some known content. Repository files (indexes, snapshots) are named by the
// SHA-256 of their stored, encrypted bytes, so a file can be checked against
// its name without the key; packs by the SHA-256 of their sealed header,
// which commits to every blob in them (see package pack).
package blob

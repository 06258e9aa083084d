// Package backend defines the storage interface under a repository and the
// layout of repository files on it.
//
// A Backend stores whole files under names. It never modifies a file: files
// are created once, read, listed and removed. Save must be atomic: a reader
// (or a crash) sees either no file or the complete file, never a prefix.
// The local implementation gets this from temp file + fsync + rename, the S3
// implementation from a single PUT. Everything above this interface relies on
// that property for crash safety.
package backend

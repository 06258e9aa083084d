// Package archiver stores a folder in a repository as a tree of trees.
//
// Folders are walked in name order by one goroutine; file content is read,
// chunked and saved by a pool of workers, so many small files and a few
// large ones keep every core busy. A file whose size, modification time
// and inode equal those recorded in the parent snapshot, and whose blobs
// are all still in the repository, is not read at all: a nightly run over
// a hundred thousand unchanged files costs one lstat each.
//
// Files that vanish or change while being read, and entries that cannot be
// read, are reported through the warning callback and do not fail the run;
// anything else (a storage error, a cancelled context) does.
package archiver

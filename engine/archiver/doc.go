// Package archiver stores a folder in a repository as a tree of trees.
//
// Subfolders are walked by as many goroutines as there are file workers,
// and file content is read, chunked and saved by the pool of workers, so
// many small files, many small folders (moodledata's file store holds one
// file per folder) and a few large files all keep every core and the disk
// busy; each folder's tree is saved once its files and subfolders are. A file whose size, modification time
// and inode equal those recorded in the parent snapshot, and whose blobs
// are all still in the repository, is not read at all: a nightly run over
// a hundred thousand unchanged files costs one lstat each.
//
// Files that vanish or change while being read, and entries that cannot be
// read, are reported through the warning callback and do not fail the run;
// anything else (a storage error, a cancelled context) does.
package archiver

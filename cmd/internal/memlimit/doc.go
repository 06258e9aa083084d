// Package memlimit keeps the Go runtime's memory close to what mbackup
// actually uses.
//
// With garbage collection alone, a process's resident set is its heap
// goal (the live heap plus GOGC percent) plus whatever the runtime freed
// but has not yet returned to the operating system; during a full backup
// that second part was a third of mbackup's peak RSS. A soft memory limit
// makes the runtime return freed pages eagerly, but a fixed limit below
// the live heap would make it collect without pause (an index of millions
// of blobs is live memory). So the governor follows the live heap: after
// each collection the limit is set a fixed share above the live heap, and
// never below a floor where collections would become needlessly frequent.
//
// Measured with scripts/bench (full backup of the bench environment): peak
// RSS 94 → 77 MiB from a local folder, 104 → 77 MiB from S3, same wall
// and CPU time; mbackup runs it with a share of 25% under GOGC=50.
package memlimit

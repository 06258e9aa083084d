// Command bench measures mbackup side by side with restic, borg and kopia
// on the same generated Moodle environment (issue 7). `make bench` runs it
// with its defaults (`make bench BENCHFLAGS="--repeat 3 --out t.md"` passes
// flags); `go run ./scripts/bench -h` lists the flags.
//
// Every tool backs up the same inputs — a `pg_dump -Fc -Z0` stream and the
// moodledata folder minus mbackup's default excludes — into a local folder
// and into a local S3 server (versitygw; borg 1.x has no S3), one tool
// after the other: a full backup (day 1), a simulated day of change
// (moodlegen's Mutate), an incremental backup (day 2), and a full restore of
// day 2 that is verified against the source. Each tool's phase starts cold:
// dirty data written out and the page cache dropped (root only; see
// --drop-caches), so no tool pays for another's writeback or cached pages.
// Per tool, backend and phase it
// records wall time, CPU time (user + system of every process of the phase,
// from the rusage the kernel reports when each is reaped), peak RSS (the
// largest resident set of any one process; each runs under a small reaper
// process, see reap.go, so the harness's own memory is not counted) and
// repository size, and prints
// one markdown table plus the ratios mbackup / best other tool. --repeat
// runs everything again on regenerated data and reports medians, for a
// machine that is not quiet.
//
// Two more modes look at mbackup alone: --scaling runs it at growing file
// counts and prints time and peak RSS per size; --profile runs its backup
// and restore code in this process under the CPU profiler.
//
// Commands run in their own process groups with a timeout; a failure is
// reported with the end of the command's stderr, the other tools go on, and
// an interrupt kills whatever runs. The harness installs nothing: it checks
// its prerequisites (PostgreSQL, pg_dump, pg_restore, versitygw for S3, the
// tools) and says how to get what is missing. restic and borg come from
// Debian (`apt-get install -y restic borgbackup`); kopia is measured only
// when installed.
//
// Exit status: 0 when every measurement succeeded, 1 when one failed (the
// table still shows the others), 2 for bad flags or missing prerequisites.
package main

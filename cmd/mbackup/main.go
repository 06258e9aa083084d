// Command mbackup is the fleet backup and restore appliance for Moodle
// sites: it snapshots each environment's PostgreSQL dump and moodledata into
// one deduplicated, compressed, encrypted repository, applies retention,
// restores, refreshes staging copies and runs all of it on a schedule.
//
// See the README and CONTRACT.md for the commands; `mbackup help` lists
// them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/mbackup/mbackup/cmd/internal/memlimit"
)

// Set by the Makefile with -ldflags.
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	// Collect garbage at half the default heap growth, as restic does:
	// about a sixth less peak memory for a few percent of CPU, on hosts
	// billed by memory. GOGC still overrides it.
	// And keep the runtime's memory within a quarter of the live heap
	// (see package memlimit), unless the operator tuned the collector.
	stopGovernor := func() {}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
		if os.Getenv("GOMEMLIMIT") == "" {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { memlimit.Run(ctx, 25); close(done) }()
			stopGovernor = func() { cancel(); <-done }
		}
	}
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stopGovernor()
	os.Exit(code)
}

const gcPercent = 50

// run executes one command line and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := newApp(stdin, stdout, stderr)
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	a.close()
	if err == nil {
		return 0
	}
	code := exitCode(err)
	if !errors.Is(err, errReported) {
		fmt.Fprintln(stderr, "mbackup: "+oneLine(err.Error()))
	}
	return code
}

// oneLine folds a message onto one line: operators grep logs, and a
// multi-line error splits across log records.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " / ")
}

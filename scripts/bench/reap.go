package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// reapArg makes the harness binary act as a reaper: `bench __reap CMD...`
// runs CMD and writes its rusage to file descriptor 3.
//
// Why: Linux carries a process's peak RSS across exec, and a child forked
// from the harness starts with the harness's own resident set as its peak
// (the harness holds generated data and grows to 80–200 MiB). Every tool
// would then report at least that. The reaper is a fresh, small process;
// the tools it forks start from its few MiB, so their peak is their own.
const reapArg = "__reap"

// reap runs args with the reaper's stdio and reports "utime stime maxrss"
// (microseconds, microseconds, KiB) on fd 3; it exits with the child's
// status (128+signal when killed).
func reap(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "reap: no command")
		return 2
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			report := os.NewFile(3, "rusage")
			fmt.Fprintf(report, "%d %d %d\n", ru.Utime.Nano()/1000, ru.Stime.Nano()/1000, ru.Maxrss)
			report.Close()
		}
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ps.ExitCode()
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, "reap:", err)
		return 127
	}
	return 1
}

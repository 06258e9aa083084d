//go:build unix

package jelasticsim

import (
	"os/exec"
	"syscall"
)

// killProcessGroup makes cancellation kill the whole process group, so a
// shell's children (pg_dump, sleep, ...) do not outlive a timeout.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

func signalNumber(ee *exec.ExitError) int {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return int(ws.Signal())
	}
	return 0
}

//go:build !unix

package jelasticsim

import "os/exec"

func killProcessGroup(*exec.Cmd) {}

func signalNumber(*exec.ExitError) int { return 0 }

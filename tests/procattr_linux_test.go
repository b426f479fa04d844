package tests

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill a helper process (nginx) if the test
// binary dies without running its cleanups (a panic, a -timeout).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

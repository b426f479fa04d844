//go:build !linux

package tests

import "os/exec"

// dieWithParent has no portable equivalent outside Linux; cleanups stop
// helper processes there.
func dieWithParent(cmd *exec.Cmd) {}

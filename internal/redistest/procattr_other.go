//go:build !linux

package redistest

import "os/exec"

// dieWithParent has no portable equivalent outside Linux; cleanups stop the
// server there.
func dieWithParent(cmd *exec.Cmd) {}

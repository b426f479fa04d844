//go:build unix

package handlers_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used so far, user and system.
// On a shared machine it tells the cost of an operation where wall time
// also counts the time other processes held the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

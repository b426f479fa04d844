//go:build !linux

package app

import (
	"net"
	"time"
)

// setUserTimeout does nothing where TCP_USER_TIMEOUT does not exist: there
// TCP keepalive finds a vanished client, in minutes.
func setUserTimeout(*net.TCPConn, time.Duration) {}

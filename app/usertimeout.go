package app

import (
	"net"
	"time"
)

// userTimeoutListener sets TCP_USER_TIMEOUT on every connection it
// accepts: a client that vanished without closing (a pulled cable, a
// dropped network) acknowledges nothing more, and the kernel then reports
// the connection failed after the timeout instead of after minutes of
// retransmissions. Streams the hub's writer takes over set it themselves;
// this reaches the others too (the goroutine writer, HTTP/2 and TLS),
// whose writes land in the socket buffer long before it fills, so that no
// write deadline would ever fire for them.
type userTimeoutListener struct {
	net.Listener
	timeout time.Duration
}

// Accept implements net.Listener.
func (l userTimeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		setUserTimeout(tc, l.timeout) // best effort: the connection works without it
	}
	return c, nil
}

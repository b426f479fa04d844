//go:build !linux

package takeover

import (
	"net"

	"factstream/hub"
)

// Supported reports whether streams can be taken over on this platform: not
// without epoll. Streams stay with their request's goroutine.
const Supported = false

type engine struct{}

func (engine) attach(Handoffer, *hub.Subscriber, net.Conn, Stream) error { return ErrUnsupported }

func (engine) close() {}

func (engine) failed() error { return nil }

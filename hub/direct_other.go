//go:build !linux

package hub

// directConn and writer exist only where streams can be taken over.
type directConn struct{}

type writer struct{}

func (*writer) markDirty(*Subscriber) {}

func (*writer) stop() {}

// CanAttach reports whether this hub can take streams over: not on this
// platform.
func (h *Hub) CanAttach() bool { return false }

// Attach is not supported on this platform: streams stay with their
// request's goroutine.
func (h *Hub) Attach(sub *Subscriber, st Stream) error {
	return ErrUnsupported
}

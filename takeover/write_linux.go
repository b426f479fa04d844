//go:build linux

package takeover

import (
	"errors"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"factstream/hub"
	"factstream/sse"
)

// maxIovecs stays below the kernel's IOV_MAX (1024) with room for the chunk
// header and trailer.
const maxIovecs = 1000

// conn is a taken-over stream: all that stays behind per stream, beside
// its subscription and socket, so it holds no buffer of its own while idle
// (the writer's scratch space is the loop's). Only the writer goroutine
// uses it once it is registered; attach fills it before.
type conn struct {
	loop *loop
	sub  *hub.Subscriber
	nc   net.Conn
	// fd is the socket's descriptor, used directly (writes, epoll, its
	// error): only the writer closes the connection, in end, which then
	// sets fd to -1 so that a stray write fails instead of reaching a
	// reused descriptor.
	fd         int
	st         Stream
	id         uint64
	cur        sse.Cursor // the last fact sent
	sent       int
	pending    []byte // bytes accepted for the stream but not yet written
	stuckAt    time.Time
	lastWrite  time.Time
	registered bool // the writer knows it: before that, wake-ups wait
	ended      bool
}

// Wake is the hub's wake-up for c (a hub.Waker): its queue just became
// non-empty, or its subscription ended. The hub may hold its lock.
func (c *conn) Wake() { c.loop.markDirty(c) }

// flush writes what the stream has waiting: leftover bytes first, then its
// queue, as one chunk per write.
func (l *loop) flush(c *conn) {
	if c.ended || !c.registered {
		return
	}
	select {
	case <-c.sub.Done():
		l.end(c, c.sub.Err())
		return
	default:
	}
	if len(c.pending) > 0 {
		if err := l.writePending(c); err != nil || len(c.pending) > 0 {
			return
		}
	}
	l.events = c.sub.Take(l.events[:0])
	defer clear(l.events) // frames already written may go
	events := l.events
	for len(events) > 0 {
		n := min(len(events), maxIovecs)
		if err := l.writeChunk(c, events[:n]); err != nil || len(c.pending) > 0 {
			if err == nil {
				// The socket is full: keep the rest as bytes, in order.
				l.keep(c, events[n:])
			}
			return
		}
		events = events[n:]
	}
}

// writeChunk writes the events that follow the cursor as one chunk with
// one writev.
func (l *loop) writeChunk(c *conn, events []hub.Event) error {
	l.iov = append(l.iov[:0], nil)
	defer func() { clear(l.iov) }() // the frames written may go
	size := 0
	for _, ev := range events {
		switch c.cur.Next(ev.Seq) {
		case sse.Skip:
			continue
		case sse.Gap:
			l.end(c, ErrGap)
			return ErrGap
		}
		l.iov = append(l.iov, ev.Frame)
		size += len(ev.Frame)
	}
	if size == 0 {
		return nil
	}
	count := len(l.iov) - 1
	l.hdr = sse.AppendChunkHeader(l.hdr[:0], size)
	l.iov[0] = l.hdr
	l.iov = append(l.iov, l.chunkEnd)
	total := size + len(l.hdr) + len(l.chunkEnd)
	n, err := l.write(c, l.iov)
	c.sent += count
	c.sub.Delivered(count)
	if err != nil {
		l.end(c, err)
		return err
	}
	if n < total {
		c.pending = appendUnwritten(c.pending[:0], l.iov, n)
		c.stuckAt = time.Now()
	}
	return nil
}

// keep appends the events that follow the cursor to the pending bytes, each
// as its own chunk, for a socket that is full. A gap ends the stream at
// once, as in writeChunk: the events after it could never be sent.
func (l *loop) keep(c *conn, events []hub.Event) {
	kept := 0
	for _, ev := range events {
		switch c.cur.Next(ev.Seq) {
		case sse.Skip:
			continue
		case sse.Gap:
			l.end(c, ErrGap) // what was kept goes with the connection
			return
		}
		c.pending = sse.AppendChunk(c.pending, ev.Frame)
		kept++
	}
	c.sent += kept
	c.sub.Delivered(kept)
}

func appendUnwritten(dst []byte, iov [][]byte, written int) []byte {
	for _, b := range iov {
		if written >= len(b) {
			written -= len(b)
			continue
		}
		dst = append(dst, b[written:]...)
		written = 0
	}
	return dst
}

func (l *loop) writePending(c *conn) error {
	l.iov = append(l.iov[:0], c.pending)
	n, err := l.write(c, l.iov)
	clear(l.iov)
	if err != nil {
		l.end(c, err)
		return err
	}
	c.pending = c.pending[:copy(c.pending, c.pending[n:])]
	if len(c.pending) > 0 {
		return nil
	}
	c.stuckAt = time.Time{}
	return nil
}

// write writes without blocking: a full socket buffer is not an error, it
// leaves bytes for the next EPOLLOUT.
func (l *loop) write(c *conn, iov [][]byte) (int, error) {
	// Not through raw.Write: its locking and poller bookkeeping cost as
	// much as the writev itself does in user space.
	n, werr := l.writev(c.fd, iov)
	if errors.Is(werr, unix.EAGAIN) {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	c.lastWrite = time.Now()
	return n, nil
}

// tick sends keepalives to idle streams and drops stalled ones.
func (l *loop) tick(now time.Time) {
	for _, c := range l.conns {
		switch {
		case len(c.pending) > 0:
			if now.Sub(c.stuckAt) > c.st.WriteTimeout && c.st.WriteTimeout > 0 {
				l.end(c, hub.ErrStalled)
			}
		case now.Sub(c.lastWrite) >= c.st.Heartbeat:
			// Through the pending bytes, as events go: a socket that
			// takes only part of the chunk keeps the rest for EPOLLOUT,
			// and the framing stays whole.
			c.pending = append(c.pending, sse.KeepaliveChunk...)
			c.stuckAt = now
			l.writePending(c) // ends the stream on an error
		}
	}
}

// end closes a stream once: the subscription, the connection, the report.
func (l *loop) end(c *conn, why error) {
	if c.ended {
		return
	}
	c.ended = true
	delete(l.conns, c.id)
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	if len(c.pending) == 0 {
		switch {
		case errors.Is(why, hub.ErrClosed):
			l.write(c, [][]byte{[]byte(sse.LastChunk)})
		case errors.Is(why, hub.ErrReset):
			l.write(c, [][]byte{[]byte(sse.ResetChunk), []byte(sse.LastChunk)})
		}
	}
	c.nc.Close()
	c.fd = -1
	if errors.Is(why, hub.ErrStalled) {
		c.sub.Stalled()
	} else {
		c.sub.Close()
	}
	if c.st.OnEnd != nil {
		c.st.OnEnd(c.sent, why)
	}
}

// failure tells why the poller found a connection failed. ETIMEDOUT is
// TCP_USER_TIMEOUT: the client acknowledged nothing, or kept its receive
// window shut, for WriteTimeout. That is a stalled client, whichever of the
// kernel and the writer's own tick notices first.
func failure(c *conn) error {
	soErr, _ := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if syscall.Errno(soErr) == unix.ETIMEDOUT {
		return hub.ErrStalled
	}
	return ErrClientGone
}

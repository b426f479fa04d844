package hub

import (
	"errors"
	"net"
	"time"

	"factstream/sse"
)

// Stream is a plain HTTP/1.1 connection taken over from the HTTP server
// (hijacked) once its response head and snapshot were written. The hub then
// writes the stream's events itself, from one writer goroutine for all such
// streams, with non-blocking writes: no goroutine, request state or buffer
// stays behind per connection, and no slow client can stall the writer.
type Stream struct {
	// Conn is the hijacked connection. The response body on it is in
	// chunked transfer coding, at a chunk boundary.
	Conn net.Conn
	// Last is the seq of the last fact already sent on it.
	Last uint64
	// Heartbeat is the interval of keepalive comments.
	Heartbeat time.Duration
	// WriteTimeout is how long the stream may have bytes it cannot write
	// before it is dropped.
	WriteTimeout time.Duration
	// OnEnd is called once, from the writer, when the stream ends, with the
	// events written and why it ended (ErrClientGone, ErrSlow, ErrClosed,
	// ErrReset, ErrGap, or a write error).
	OnEnd func(sent int, why error)
}

// Reasons a taken-over stream ends, besides ErrSlow, ErrClosed and ErrReset.
var (
	// ErrClientGone means the client closed its connection.
	ErrClientGone = errors.New("client closed the connection")
	// ErrGap means the events to send did not follow the last one sent;
	// the client resumes from the store on reconnecting.
	ErrGap = errors.New("events out of sequence")
	// ErrUnsupported means the connection cannot be taken over here.
	ErrUnsupported = errors.New("stream takeover not supported")
	// ErrStalled means the client took no data for WriteTimeout: it
	// stopped reading, or vanished without closing.
	ErrStalled = errors.New("client stalled")
)

// EndChunked ends the chunked body of a stream that Attach refused with
// why as the writer ends the streams it holds: cleanly at shutdown, with
// sse.ResetFrame first after ErrReset, not at all otherwise (the caller then
// just closes the connection). It is for the caller, which still owns
// conn; it writes under a short deadline.
func EndChunked(conn net.Conn, why error) {
	var end string
	switch {
	case errors.Is(why, ErrClosed):
		end = sse.LastChunk
	case errors.Is(why, ErrReset):
		end = sse.ResetChunk + sse.LastChunk
	default:
		return
	}
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	conn.Write([]byte(end)) // best effort: the connection closes next anyway
}

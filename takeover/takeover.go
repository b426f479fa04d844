// Package takeover writes the live events of plain HTTP/1.1 streams from
// one goroutine for all of them. Once a stream's head and snapshot are
// written, its connection is taken over from the HTTP server (hijacked):
// no goroutine, request state or buffer then stays behind per stream, which
// is most of what an idle stream costs. The writer uses non-blocking writes
// (writev on the socket, epoll for what a full socket or a closing client
// reports), so no slow client can stall it.
//
// It depends on the hub, never the reverse: the hub only learns, through
// Handoff, to wake the writer instead of the stream's own goroutine.
// Streams it cannot take (HTTP/2, TLS, HTTP/1.0, a writer that refuses the
// hijack, a platform without epoll) stay with their goroutine, which serves
// them just as well at a higher cost per stream.
package takeover

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"factstream/hub"
	"factstream/sse"
)

// Stream is a stream to take over, its snapshot written.
type Stream struct {
	// Last is the seq of the last fact already sent on it.
	Last uint64
	// Heartbeat is the interval of keepalive comments.
	Heartbeat time.Duration
	// WriteTimeout is how long the stream may have bytes it cannot write
	// before it is dropped.
	WriteTimeout time.Duration
	// OnEnd is called once when a taken-over stream ends, from the writer
	// (or from Attach when the writer refused it), with the events
	// written and why it ended (ErrClientGone, ErrGap, hub.ErrSlow,
	// hub.ErrStalled, hub.ErrClosed, hub.ErrReset, or a write error).
	OnEnd func(sent int, why error)
}

// Reasons a taken-over stream ends, besides the hub's.
var (
	// ErrClientGone means the client closed its connection.
	ErrClientGone = errors.New("client closed the connection")
	// ErrGap means the events to send did not follow the last one sent;
	// the client resumes from the store on reconnecting.
	ErrGap = errors.New("events out of sequence")
	// ErrUnsupported means the connection cannot be taken over here.
	ErrUnsupported = errors.New("stream takeover not supported")
)

// Handoffer is what the writer needs from the hub: to be woken, instead of
// the stream's goroutine, when a subscription has events or ends.
type Handoffer interface {
	Handoff(sub *hub.Subscriber, wake hub.Waker) error
}

// Writer takes streams over and writes them. It is safe for concurrent use.
// Its goroutines start with the first stream it takes, and end with Close.
type Writer struct {
	hub Handoffer
	log *slog.Logger

	notTaken atomic.Uint64
	logged   atomic.Bool // the first stream not taken over was logged

	eng engine // platform specific: the writer proper
}

// New returns a writer that takes streams of h over. log gets one debug
// line the first time a stream cannot be taken over.
func New(h Handoffer, log *slog.Logger) *Writer {
	return &Writer{hub: h, log: log}
}

// Hijack takes the connection of rw, a stream whose head and snapshot are
// written, from the HTTP server, for Attach. It returns nil when the
// connection cannot be taken over: the stream then stays the caller's,
// untouched, and is counted (NotTakenOver).
//
// rw must let itself be hijacked with a body already written, as net/http's
// own writer does (it flushes the chunk written so far); a framework's
// wrapper that refuses must be unwrapped by the caller.
func (w *Writer) Hijack(rw http.ResponseWriter, r *http.Request) net.Conn {
	var why string
	switch err := w.eng.failed(); {
	case !Supported:
		why = "no epoll on this platform"
	case err != nil:
		why = err.Error()
	case r.ProtoMajor != 1 || r.ProtoMinor < 1:
		// Only HTTP/1.1 bodies are chunked, which the writer continues;
		// an HTTP/1.0 body runs to the connection's end.
		why = "not HTTP/1.1"
	case r.TLS != nil:
		why = "TLS"
	}
	if why == "" {
		conn, _, err := http.NewResponseController(rw).Hijack()
		if err == nil {
			// A wrapper that watched the requests (the framing guard)
			// has nothing left to watch on a stream: keep the socket
			// alone, so an idle stream does not hold the wrapper too.
			if w, ok := conn.(interface{ NetConn() net.Conn }); ok {
				conn = w.NetConn()
			}
			return conn
		}
		why = "hijack refused: " + err.Error()
	}
	w.notTakenOver(r.Context(), r.Proto, why)
	return nil
}

// Attach hands a stream that Hijack took to the writer, which owns conn
// and sub from then on: it ends them, and calls st.OnEnd once, from here
// if it cannot take the stream after all (the subscription ended while the
// snapshot was written, the writer is closed, the connection has no
// descriptor to poll).
func (w *Writer) Attach(conn net.Conn, sub *hub.Subscriber, st Stream) {
	err := w.eng.attach(w.hub, sub, conn, st)
	if err == nil {
		return
	}
	if errors.Is(err, ErrUnsupported) {
		w.notTakenOver(context.Background(), "HTTP/1.1", err.Error())
	}
	endChunked(conn, err)
	conn.Close()
	sub.Close()
	if st.OnEnd != nil {
		st.OnEnd(0, err)
	}
}

// NotTakenOver returns how many streams could not be taken over: those
// Hijack left with their goroutine (HTTP/2, TLS, HTTP/1.0, a refused
// hijack), and those Attach refused for want of a descriptor to poll.
func (w *Writer) NotTakenOver() uint64 { return w.notTaken.Load() }

// Close ends every taken-over stream (as at shutdown: cleanly, with
// hub.ErrClosed), stops the writer's goroutines and waits for them. Streams
// offered afterwards are refused.
func (w *Writer) Close() { w.eng.close() }

// notTakenOver counts a stream that stays with its goroutine. A proxy or
// a client on HTTP/2 leaves every stream so, so one line tells the
// operator, not one per stream.
func (w *Writer) notTakenOver(ctx context.Context, proto, why string) {
	w.notTaken.Add(1)
	if w.log != nil && w.logged.CompareAndSwap(false, true) {
		w.log.LogAttrs(ctx, slog.LevelDebug, "a stream's connection cannot be taken over (counted in factstream_streams_not_taken_over_total; logged once)",
			slog.String("reason", why), slog.String("proto", proto))
	}
}

// endChunked ends the chunked body of a stream the writer refused with why,
// as the writer ends the streams it holds: cleanly at shutdown, with
// sse.ResetFrame first after hub.ErrReset, not at all otherwise (the
// connection just closes). It writes under a short deadline.
func endChunked(conn net.Conn, why error) {
	var end string
	switch {
	case errors.Is(why, hub.ErrClosed):
		end = sse.LastChunk
	case errors.Is(why, hub.ErrReset):
		end = sse.ResetChunk + sse.LastChunk
	default:
		return
	}
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	conn.Write([]byte(end)) // best effort: the connection closes next anyway
}

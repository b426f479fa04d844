// Package sse is the wire format of factstream's streams: Server-Sent
// Events (the WHATWG HTML standard, section 9.2) as the handler writes
// them, the HTTP/1.1 chunked framing that a taken-over stream writes them
// in, and the cursor that keeps a stream's events in seq order. It knows
// nothing of facts, subscribers or connections: both ways a stream is
// written (its request's goroutine, or the takeover writer) frame their
// bytes here, so that they cannot drift apart.
package sse

import (
	"strconv"
	"time"
)

// Keepalive is the comment sent on an idle stream: clients ignore it, and
// proxies and the TCP stack see traffic.
const Keepalive = ": keepalive\n\n"

// ResetFrame is the frame that empties a client's last event id: an
// EventSource then reconnects without Last-Event-ID and gets a fresh
// snapshot. A stream whose store lost its facts sends it last, since the
// ids its client holds name facts the store no longer has.
const ResetFrame = "id:\n\n"

// AppendEvent appends one event: an "event:" line when name is set (an
// EventSource dispatches it to that name's listeners instead of
// onmessage), an "id:" line when id is not 0, and the data line that
// appendData writes. Neither name nor the data may hold a line break: a
// line break would end the field, and let the rest pose as fields of its
// own. JSON never holds a raw one, which is why every payload is JSON.
func AppendEvent(dst []byte, name string, id uint64, appendData func([]byte) []byte) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	if id > 0 {
		dst = append(dst, "id: "...)
		dst = strconv.AppendUint(dst, id, 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data: "...)
	dst = appendData(dst)
	return append(dst, '\n', '\n')
}

// AppendRetry appends the retry field, which sets how long a client waits
// before it reconnects, in whole milliseconds.
func AppendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, '\n', '\n')
}

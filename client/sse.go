package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrEventTooLarge is the failure of a stream whose event exceeds
// Options.MaxEventSize. Reconnecting would meet the same event, so
// Subscribe ends with it.
var ErrEventTooLarge = errors.New("stream event too large")

// sseEvent is one event of a text/event-stream, as the HTML standard's
// EventSource parses it.
type sseEvent struct {
	name  string // the event field; empty for a plain message
	data  []byte
	id    string
	hasID bool  // an id field was present, empty or not
	retry int64 // the retry field in milliseconds, -1 when absent
}

// sseReader reads events from a stream, keeping every line and every
// event's data under a bound.
type sseReader struct {
	sc     *bufio.Scanner
	max    int
	onLine func() // called for every line read, keepalives included
	ev     sseEvent
	data   []byte
	first  bool
}

func newSSEReader(r io.Reader, max int, onLine func()) *sseReader {
	sc := bufio.NewScanner(r)
	// A line holds at most one field name and its value; the initial
	// buffer's capacity would raise the bound, so it is no larger.
	limit := max + 64
	sc.Buffer(make([]byte, 0, min(4096, limit)), limit)
	cr := false // the previous line ended in CR, so an LF next belongs to it
	sc.Split(func(b []byte, atEOF bool) (int, []byte, error) {
		skip := 0
		if cr && len(b) > 0 {
			cr = false
			if b[0] == '\n' {
				skip = 1
			}
		}
		rest := b[skip:]
		if i := bytes.IndexAny(rest, "\r\n"); i >= 0 {
			cr = rest[i] == '\r'
			return skip + i + 1, rest[:i], nil
		}
		if atEOF && len(rest) > 0 {
			return len(b), rest, bufio.ErrFinalToken // an unterminated line: never dispatched
		}
		return skip, nil, nil
	})
	return &sseReader{sc: sc, max: max, onLine: onLine, first: true, ev: sseEvent{retry: -1}}
}

// next returns the next event that has any field (blocks of comments,
// the keepalives, are skipped). At the end of the stream it returns
// io.EOF, or the read error; an event cut short is never returned.
func (r *sseReader) next() (sseEvent, error) {
	seen := false
	for r.sc.Scan() {
		if r.onLine != nil {
			r.onLine()
		}
		line := r.sc.Bytes()
		if r.first {
			r.first = false
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
		}
		if len(line) == 0 {
			if !seen {
				continue
			}
			ev := r.ev
			ev.data = bytes.TrimSuffix(r.data, []byte("\n"))
			r.ev, r.data = sseEvent{retry: -1}, nil
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		seen = true
		if err := r.field(line); err != nil {
			return sseEvent{}, err
		}
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return sseEvent{}, fmt.Errorf("%w: a line exceeds %d bytes", ErrEventTooLarge, r.max)
		}
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}

func (r *sseReader) field(line []byte) error {
	name, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(name) {
	case "data":
		if len(r.data)+len(value)+1 > r.max {
			return fmt.Errorf("%w: an event's data exceeds %d bytes", ErrEventTooLarge, r.max)
		}
		r.data = append(append(r.data, value...), '\n')
	case "event":
		r.ev.name = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.ev.id, r.ev.hasID = string(value), true
		}
	case "retry":
		if ms, ok := digits(value); ok {
			r.ev.retry = ms
		}
	}
	return nil
}

// digits parses a retry value: ASCII digits only, as the standard says.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

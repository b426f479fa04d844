//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// maxControlLine bounds a status, header or chunk-size line, so a broken
// peer cannot make a connection's buffer grow without end.
const maxControlLine = 8 << 10

// event is one dispatched SSE event. Its slices are only valid during the
// callback that receives it.
type event struct {
	ID    []byte // last event id, as the EventSource algorithm carries it
	Type  []byte // event type; empty means "message"
	Data  []byte // data lines joined by LF
	Retry int    // last retry value seen on the stream, 0 if none
}

// Where a response parser is in the HTTP/1.1 message (RFC 9112).
type httpState uint8

const (
	stStatus    httpState = iota // status line
	stHeader                     // header lines up to the blank line
	stChunkSize                  // chunk-size [; extensions]
	stChunkData                  // chunk-data, remaining bytes left
	stChunkEnd                   // the CRLF after chunk-data
	stTrailer                    // trailer fields after the last chunk
	stBody                       // identity body: Content-Length or until close
	stDone                       // the message is complete
)

// errStreamEnded reports that the server completed the response body: an
// SSE stream should never end while the client still wants it.
var errStreamEnded = errors.New("response body ended")

// statusError is a response status other than 200.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

// responseParser decodes an HTTP/1.1 response carrying an SSE stream, fed
// incrementally with whatever each read returned: the status line, the
// headers, the chunked (or identity) framing, then the event stream. It
// keeps only partial lines between reads, so it suits thousands of
// connections served from one buffer.
type responseParser struct {
	state     httpState
	chunked   bool
	length    int64 // Content-Length, -1 when absent
	remaining int64 // bytes left in the chunk or body; -1 means until close
	line      []byte
	sse       sseParser
}

// newResponseParser returns a parser that calls onEvent for every event.
func newResponseParser(onEvent func(ev *event)) *responseParser {
	return &responseParser{length: -1, sse: sseParser{onEvent: onEvent}}
}

// Feed parses the next bytes of the response.
func (p *responseParser) Feed(b []byte) error {
	for len(b) > 0 {
		switch p.state {
		case stChunkData, stBody:
			b = p.body(b)
		case stDone:
			return errStreamEnded
		default:
			line, rest, ok, err := p.takeLine(b)
			if err != nil {
				return err
			}
			b = rest
			if !ok {
				return nil
			}
			err = p.control(line)
			p.line = p.line[:0]
			if err != nil {
				return err
			}
		}
	}
	if p.state == stDone {
		return errStreamEnded
	}
	return nil
}

// body hands the payload bytes of the current chunk or body to the SSE
// parser and returns what follows them.
func (p *responseParser) body(b []byte) []byte {
	n := len(b)
	if p.remaining >= 0 && int64(n) > p.remaining {
		n = int(p.remaining)
	}
	p.sse.feed(b[:n])
	if p.remaining >= 0 {
		p.remaining -= int64(n)
		if p.remaining == 0 {
			if p.state == stChunkData {
				p.state = stChunkEnd
			} else {
				p.state = stDone
			}
		}
	}
	return b[n:]
}

// takeLine returns the next LF-terminated line without its CRLF or LF,
// joining it with a partial line kept from earlier reads; ok is false when
// b ended first (b is then kept whole).
func (p *responseParser) takeLine(b []byte) (line, rest []byte, ok bool, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		p.line = append(p.line, b...)
		if len(p.line) > maxControlLine {
			return nil, nil, false, errors.New("control line too long")
		}
		return nil, nil, false, nil
	}
	line = b[:i]
	if len(p.line) > 0 {
		p.line = append(p.line, line...)
		line = p.line
	}
	return bytes.TrimSuffix(line, []byte{'\r'}), b[i+1:], true, nil
}

// control handles one status, header, chunk-size or trailer line.
func (p *responseParser) control(line []byte) error {
	switch p.state {
	case stStatus:
		return p.status(line)
	case stHeader:
		return p.header(line)
	case stChunkSize:
		return p.chunkSize(line)
	case stChunkEnd:
		if len(line) != 0 {
			return errors.New("chunk data longer than its size")
		}
		p.state = stChunkSize
	case stTrailer:
		if len(line) == 0 {
			p.state = stDone
		}
	}
	return nil
}

func (p *responseParser) status(line []byte) error {
	// "HTTP/1.1 200 OK": the code is the three digits after the version.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[12-4] != ' ' {
		return fmt.Errorf("malformed status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return fmt.Errorf("malformed status line %q", line)
	}
	if code != 200 {
		return statusError{code}
	}
	p.state = stHeader
	return nil
}

func (p *responseParser) header(line []byte) error {
	if len(line) == 0 {
		p.startBody()
		return nil
	}
	name, value, ok := bytes.Cut(line, []byte{':'})
	if !ok {
		return fmt.Errorf("malformed header line %q", line)
	}
	value = bytes.TrimSpace(value)
	switch {
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		// chunked is always the final coding when present (RFC 9112 §6.1).
		codings := bytes.Split(value, []byte{','})
		p.chunked = bytes.EqualFold(bytes.TrimSpace(codings[len(codings)-1]), []byte("chunked"))
	case bytes.EqualFold(name, []byte("Content-Length")):
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("malformed Content-Length %q", value)
		}
		p.length = n
	}
	return nil
}

// startBody picks the framing once the headers are complete: chunked wins
// over Content-Length (RFC 9112 §6.3), and without either the body runs
// until the connection closes.
func (p *responseParser) startBody() {
	switch {
	case p.chunked:
		p.state = stChunkSize
	case p.length == 0:
		p.state = stDone
	default:
		p.state = stBody
		p.remaining = p.length
	}
}

func (p *responseParser) chunkSize(line []byte) error {
	if i := bytes.IndexAny(line, "; \t"); i >= 0 {
		line = line[:i] // chunk extensions are ignored
	}
	size, err := strconv.ParseUint(string(line), 16, 62)
	if err != nil {
		return fmt.Errorf("malformed chunk size %q", line)
	}
	if size == 0 {
		p.state = stTrailer
		return nil
	}
	p.state = stChunkData
	p.remaining = int64(size)
	return nil
}

// sseParser splits an event stream into lines (ended by CRLF, LF or CR)
// and dispatches events at blank lines, as the EventSource processing
// model of the HTML standard does.
type sseParser struct {
	onEvent func(ev *event)
	line    []byte // a line split across feeds
	skipLF  bool   // the previous feed ended with CR: a leading LF ends the same line
	data    []byte
	typ     []byte
	ev      event
}

func (s *sseParser) feed(b []byte) {
	if s.skipLF && len(b) > 0 {
		s.skipLF = false
		if b[0] == '\n' {
			b = b[1:]
		}
	}
	for len(b) > 0 {
		i := lineEnd(b)
		if i < 0 {
			s.line = append(s.line, b...)
			return
		}
		line := b[:i]
		if len(s.line) > 0 {
			s.line = append(s.line, line...)
			line = s.line
		}
		if b[i] == '\r' {
			if i+1 == len(b) {
				s.skipLF = true
			} else if b[i+1] == '\n' {
				i++
			}
		}
		b = b[i+1:]
		s.processLine(line)
		s.line = s.line[:0]
	}
}

// lineEnd returns the index of the first CR or LF in b, or -1.
func lineEnd(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	search := b
	if lf >= 0 {
		search = b[:lf]
	}
	if cr := bytes.IndexByte(search, '\r'); cr >= 0 {
		return cr
	}
	return lf
}

func (s *sseParser) processLine(line []byte) {
	if len(line) == 0 {
		s.dispatch()
		return
	}
	if line[0] == ':' {
		return // a comment, such as a keepalive
	}
	field, value, _ := bytes.Cut(line, []byte{':'})
	value = bytes.TrimPrefix(value, []byte{' '})
	switch string(field) {
	case "data":
		s.data = append(s.data, value...)
		s.data = append(s.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			s.ev.ID = append(s.ev.ID[:0], value...)
		}
	case "event":
		s.typ = append(s.typ[:0], value...)
	case "retry":
		if n, err := strconv.Atoi(string(value)); err == nil && n >= 0 && isDigits(value) {
			s.ev.Retry = n
		}
	}
}

// dispatch delivers the buffered event; a block without data lines (such
// as the retry line) dispatches nothing.
func (s *sseParser) dispatch() {
	if len(s.data) == 0 {
		s.typ = s.typ[:0]
		return
	}
	s.ev.Data = s.data[:len(s.data)-1]
	s.ev.Type = s.typ
	if s.onEvent != nil {
		s.onEvent(&s.ev)
	}
	s.data = s.data[:0]
	s.typ = s.typ[:0]
	if cap(s.data) > 64<<10 {
		s.data = nil // a large snapshot should not pin its buffer for the whole run
	}
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

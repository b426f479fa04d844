package middleware

import "bytes"

// The states of headScanner.
const (
	scanLead        uint8 = iota // before a request line
	scanRequestLine              // in the request line
	scanLineStart                // at the start of a header line
	scanName                     // in a field name that may be a framing one
	scanLineCR                   // after a CR at the start of a line
	scanLength                   // in a Content-Length value
	scanLengthCR                 // after a CR in a Content-Length value
	scanSkip                     // in a line that does not matter
)

// The fields of a head that frame its body.
const (
	fieldOther uint8 = iota
	fieldLength
	fieldEncoding
)

// headScanner follows HTTP/1 request framing exactly as net/http reads it
// (net/http/server.go readRequest, net/textproto ReadMIMEHeader and
// net/http/transfer.go readTransfer) over a connection's bytes, fed as
// they arrive in any pieces: each head up to its blank line, noting
// Content-Length and Transfer-Encoding, then a Content-Length body skipped
// by count. It stops (done) at the first head with Transfer-Encoding,
// ambiguous if that head had Content-Length too. Where net/http refuses a
// request (and closes the connection) the scanner may give up or read on:
// no request is served after it either way; it only must never frame
// otherwise a request net/http serves. Its state is a few words, whatever
// the heads hold; its work is per byte of head only.
type headScanner struct {
	limit     int  // the longest head net/http may accept
	done      bool // nothing more to scan
	ambiguous bool

	state   uint8
	n       int   // bytes of the current head so far
	body    int64 // bytes of the current body still to skip
	leadCRs int   // CR or LF bytes net/http drops before this head

	// The request line: the method is POST so far, the protocol is
	// what follows the second space (longer than 9 bytes: not HTTP/1.x).
	post     bool
	col      int
	spaces   int
	proto    [9]byte
	protoLen int

	// The header fields: the one being read (continuation lines belong
	// to it), how much of its name matched, and what the head holds.
	field    uint8
	matched  int
	encoding bool // Transfer-Encoding present
	lengths  int  // Content-Length fields
	lengthOK bool // every Content-Length field valid and equal
	length   int64
	// The Content-Length field being read: its digits so far, and
	// whether they ended (whitespace followed them).
	digits, ended bool
	value         int64
}

const (
	lengthName   = "content-length"
	encodingName = "transfer-encoding"
	maxLength    = 1<<63 - 1 // net/http parses Content-Length into 63 bits
)

// feed scans p, the next bytes read from the connection.
func (s *headScanner) feed(p []byte) {
	for len(p) > 0 && !s.done {
		if s.body > 0 {
			k := int64(len(p))
			if k > s.body {
				k = s.body
			}
			s.body -= k
			p = p[k:]
			continue
		}
		k, end := s.head(p)
		s.n += k
		p = p[k:]
		if s.n > s.limit {
			s.done = true // net/http answers 431 and closes
			return
		}
		if end {
			s.endHead()
		}
	}
}

// endHead decides, at a head's blank line, how the request is framed.
func (s *headScanner) endHead() {
	s.endField()
	http10 := string(s.proto[:min(s.protoLen, len(s.proto))]) == "HTTP/1.0"
	switch {
	case s.encoding && !http10: // HTTP/1.0 ignores Transfer-Encoding
		s.ambiguous = s.lengths > 0
		s.done = true
		return
	case s.lengths > 0 && !s.lengthOK:
		s.done = true // net/http answers 400 and closes
		return
	case s.lengths > 0:
		s.body = s.length
	}
	// What follows a POST may start with up to 4 CR or LF bytes that
	// net/http drops (RFC 9112 section 2.2 tolerance for old clients).
	leadCRs := 0
	if s.post {
		leadCRs = 4
	}
	*s = headScanner{limit: s.limit, body: s.body, leadCRs: leadCRs}
}

// endField takes in the Content-Length field just read, if it was one.
func (s *headScanner) endField() {
	if s.field != fieldLength {
		return
	}
	s.field = fieldOther
	s.lengths++
	switch {
	case !s.digits || s.value < 0: // empty, or not a number
		s.lengthOK = false
	case s.lengths == 1:
		s.lengthOK, s.length = true, s.value
	case s.value != s.length:
		s.lengthOK = false
	}
}

// head scans p within a head and returns how many bytes it took, and
// whether the head ended with the last of them.
func (s *headScanner) head(p []byte) (int, bool) {
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch s.state {
		case scanLead:
			if s.leadCRs > 0 && (b == '\r' || b == '\n') {
				s.leadCRs--
				continue
			}
			s.state = scanRequestLine
			i--
		case scanRequestLine:
			if !s.requestLine(b) {
				return i + 1, false
			}
		case scanLineStart:
			switch {
			case b == '\n':
				return i + 1, true
			case b == '\r':
				s.state = scanLineCR
			case b == ' ' || b == '\t': // a continuation of the field
				s.state = scanSkip
				if s.field == fieldLength {
					s.state = scanLength
				}
			default:
				s.endField()
				s.state, s.matched = scanName, 0
				i--
			}
		case scanLineCR:
			if b == '\n' {
				return i + 1, true
			}
			s.endField() // a line starting with CR: net/http refuses it
			s.state = scanSkip
			i--
		case scanName:
			s.name(b)
		case scanLength:
			s.lengthByte(b)
		case scanLengthCR:
			if b == '\n' {
				s.lengthByte(b)
				continue
			}
			s.value = -1 // a CR inside the value
			s.state = scanSkip
			i--
		case scanSkip:
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				return len(p), false
			}
			i += j
			s.state = scanLineStart
		}
	}
	return len(p), false
}

// requestLine takes the next byte of the request line, and reports false
// when scanning ends there.
func (s *headScanner) requestLine(b byte) bool {
	switch {
	case b == '\n':
		if s.protoLen > 0 && s.protoLen <= len(s.proto) && s.proto[s.protoLen-1] == '\r' {
			s.protoLen--
		}
		// net/http serves HTTP/1.x only; anything else is refused, or
		// would be another protocol from here on.
		p := s.proto[:min(s.protoLen, len(s.proto))]
		if s.protoLen != 8 || string(p[:7]) != "HTTP/1." || p[7] < '0' || p[7] > '9' {
			s.done = true
			return false
		}
		s.state = scanLineStart
	case s.spaces >= 2:
		if s.protoLen < len(s.proto) {
			s.proto[s.protoLen] = b
		}
		s.protoLen = min(s.protoLen+1, len(s.proto)+1)
	case b == ' ':
		s.spaces++
		if s.spaces == 1 {
			s.post = s.col == 4 && s.post
		}
	case s.spaces == 0:
		s.post = s.col < 4 && b == "POST"[s.col] && (s.col == 0 || s.post)
		s.col++
	}
	return true
}

// name takes the next byte of a field name that has matched so far.
func (s *headScanner) name(b byte) {
	if 'A' <= b && b <= 'Z' {
		b += 'a' - 'A' // field names are case-insensitive
	}
	if s.matched == 0 {
		switch b {
		case 'c':
			s.field = fieldLength
		case 't':
			s.field = fieldEncoding
		default:
			s.field, s.state = fieldOther, scanSkip
			return
		}
		s.matched = 1
		return
	}
	want := lengthName
	if s.field == fieldEncoding {
		want = encodingName
	}
	switch {
	case s.matched < len(want) && b == want[s.matched]:
		s.matched++
	case b == ':' && s.matched == len(want):
		if s.field == fieldEncoding {
			s.encoding = true
			s.field, s.state = fieldOther, scanSkip
			return
		}
		s.digits, s.ended, s.value = false, false, 0
		s.state = scanLength
	case b == '\n':
		s.field, s.state = fieldOther, scanLineStart
	default:
		s.field, s.state = fieldOther, scanSkip
	}
}

// lengthByte takes the next byte of a Content-Length value, continuation
// lines included: net/http joins those with a space, so digits on two
// lines are no number.
func (s *headScanner) lengthByte(b byte) {
	switch {
	case b >= '0' && b <= '9':
		d := int64(b - '0')
		switch {
		case s.value < 0:
		case s.ended || s.value > (maxLength-d)/10:
			s.value = -1
		default:
			s.value = s.value*10 + d
			s.digits = true
		}
	case b == ' ' || b == '\t':
		s.ended = s.digits
	case b == '\r':
		s.state = scanLengthCR
	case b == '\n':
		s.ended = s.digits
		s.state = scanLineStart
	default:
		s.value = -1
	}
}

package handlers

import (
	"unicode/utf8"

	"factstream/store"
)

// decodeSimpleDraft is the fast path of decodeJSONDrafts for the body
// nearly every publisher sends: one object whose fields are info and,
// optionally, source, with string values (source may be null). It decodes
// in one pass without reflection. For anything else, valid or not, it
// reports false and the general decoder gives the answer and its errors,
// so both agree wherever this one succeeds (FuzzSimpleDraftAgrees).
func decodeSimpleDraft(body []byte) (store.Draft, bool) {
	var d store.Draft
	if !scanSimpleDraft(body, &d) {
		return store.Draft{}, false
	}
	return d, true
}

func scanSimpleDraft(body []byte, d *store.Draft) bool {
	s := jsonScanner{b: body}
	s.space()
	if !s.consume('{') {
		return false
	}
	var seenInfo, seenSource bool
	for {
		s.space()
		key, ok := s.plainKey()
		if !ok {
			return false
		}
		s.space()
		if !s.consume(':') {
			return false
		}
		s.space()
		switch {
		case key == "info" && !seenInfo:
			seenInfo = true
			if d.Info, ok = s.str(); !ok {
				return false
			}
		case key == "source" && !seenSource:
			seenSource = true
			if s.literal("null") {
				break
			}
			if d.Source, ok = s.str(); !ok {
				return false
			}
		default: // unknown or repeated: the general decoder says which
			return false
		}
		s.space()
		if s.consume('}') {
			break
		}
		if !s.consume(',') {
			return false
		}
	}
	s.space()
	return seenInfo && s.i == len(s.b)
}

// jsonScanner reads JSON tokens from b, starting at i.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// plainKey reads an object key written without escapes; the keys the API
// knows never need one.
func (s *jsonScanner) plainKey() (string, bool) {
	if !s.consume('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			key := s.b[start:s.i]
			s.i++
			// Compared without allocating; only known keys are returned.
			switch string(key) {
			case "info":
				return "info", true
			case "source":
				return "source", true
			}
			return "", false
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return "", false
		}
		s.i++
	}
	return "", false
}

// str reads a string value, decoding its escapes. It refuses what the
// general decoder refuses or would change: control characters, invalid
// UTF-8 and lone surrogate escapes.
func (s *jsonScanner) str() (string, bool) {
	if !s.consume('"') {
		return "", false
	}
	start := s.i
	// Nil until the first escape: most strings have none and are copied
	// once, as they are.
	var out []byte
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if out == nil {
				return string(s.b[start : s.i-1]), true
			}
			return string(out), true
		case c == '\\':
			if out == nil {
				out = append(make([]byte, 0, len(s.b)-start), s.b[start:s.i]...)
			}
			var ok bool
			if out, ok = s.appendEscape(out); !ok {
				return "", false
			}
		case c < 0x20:
			return "", false
		default:
			size := 1
			if c >= utf8.RuneSelf {
				var r rune
				if r, size = utf8.DecodeRune(s.b[s.i:]); r == utf8.RuneError && size == 1 {
					return "", false
				}
			}
			if out != nil {
				out = append(out, s.b[s.i:s.i+size]...)
			}
			s.i += size
		}
	}
	return "", false
}

// appendEscape decodes the escape at the backslash under the cursor onto
// out.
func (s *jsonScanner) appendEscape(out []byte) ([]byte, bool) {
	if s.i+1 >= len(s.b) {
		return out, false
	}
	e := s.b[s.i+1]
	s.i += 2
	switch e {
	case '"', '\\', '/':
		return append(out, e), true
	case 'b':
		return append(out, '\b'), true
	case 'f':
		return append(out, '\f'), true
	case 'n':
		return append(out, '\n'), true
	case 'r':
		return append(out, '\r'), true
	case 't':
		return append(out, '\t'), true
	case 'u':
		r, ok := s.escapedRune()
		return utf8.AppendRune(out, r), ok
	}
	return out, false
}

// escapedRune reads the four hex digits after \u, and a second \u escape
// when the first is the high half of a surrogate pair.
func (s *jsonScanner) escapedRune() (rune, bool) {
	r, ok := hex4(s.b, s.i)
	if !ok {
		return 0, false
	}
	s.i += 4
	switch {
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, false
	case r >= 0xD800 && r <= 0xDBFF:
		if !s.literal(`\u`) {
			return 0, false
		}
		low, ok := hex4(s.b, s.i)
		if !ok || low < 0xDC00 || low > 0xDFFF {
			return 0, false
		}
		s.i += 4
		return 0x10000 + (r-0xD800)<<10 + (low - 0xDC00), true
	}
	return r, true
}

// hex4 reads the four hex digits of a \u escape at b[at:].
func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

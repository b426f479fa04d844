package store

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the fact's JSON encoding to dst: the same bytes as
// encoding/json would write (HTML-safe escaping included), without
// reflection, because every publish encodes its facts for the response,
// the stream and the store.
func (f Fact) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, f.ID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, f.Seq, 10)
	dst = append(dst, `,"info":`...)
	dst = appendJSONString(dst, f.Info)
	dst = append(dst, `,"source":`...)
	dst = appendJSONString(dst, f.Source)
	dst = append(dst, `,"created_at":"`...)
	dst = f.CreatedAt.UTC().AppendFormat(dst, TimeLayout)
	return append(dst, '"', '}')
}

// AppendJSONArray appends facts as a JSON array ("[]" when empty).
func AppendJSONArray(dst []byte, facts []Fact) []byte {
	dst = append(dst, '[')
	for i, f := range facts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = f.AppendJSON(dst)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does: control characters,
// quotes and backslashes escaped, <, > and & as \u escapes, U+2028 and
// U+2029 escaped for JavaScript, and invalid UTF-8 as U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"factstream/store"
)

// MaxBatch is the largest number of facts one POST /facts may carry.
const MaxBatch = 1000

const (
	mediaJSON = "application/json"
	mediaForm = "application/x-www-form-urlencoded"
)

// factRequest is a decoded, validated publish request.
type factRequest struct {
	drafts []store.Draft
	batch  bool
	media  string
	body   []byte
}

// hash identifies the request for idempotency: the same key with another
// hash is a different request.
func (r factRequest) hash() [32]byte {
	h := sha256.New()
	h.Write([]byte(r.media))
	h.Write([]byte{0})
	h.Write(r.body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// readFactRequest reads, decodes and validates a publish request body.
// Nothing is stored unless it returns no error.
func readFactRequest(c *gin.Context, maxBody int64, allowBatch bool) (factRequest, error) {
	media, err := requestMediaType(c.GetHeader("Content-Type"))
	if err != nil {
		return factRequest{}, err
	}
	if c.Request.ContentLength > maxBody {
		return factRequest{}, &http.MaxBytesError{Limit: maxBody}
	}
	body, err := readBody(c.Writer, c.Request, maxBody)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return factRequest{}, err
		}
		return factRequest{}, badRequest("unreadable-body", "could not read the request body")
	}
	req := factRequest{media: media, body: body}
	if media == mediaJSON {
		req.drafts, req.batch, err = decodeJSONDrafts(body, allowBatch)
	} else {
		req.drafts, err = decodeFormDraft(body)
	}
	if err != nil {
		return factRequest{}, err
	}
	if err := validateDrafts(req.drafts, req.batch); err != nil {
		return factRequest{}, err
	}
	return req, nil
}

// firstRead bounds the buffer a declared Content-Length gets before its
// bytes arrive: the default max_body, so that every body the defaults
// accept is still read into one buffer of its exact size.
const firstRead = 64 << 10

// readBody reads a body of at most maxBody bytes (a declared length above
// it is refused by the caller). Its buffer grows with what arrives, never
// with what the client announced: with a large max_body, a declared
// length alone would otherwise be an allocation of the client's choosing.
func readBody(w http.ResponseWriter, r *http.Request, maxBody int64) ([]byte, error) {
	n := r.ContentLength
	if n < 0 {
		return io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	}
	// net/http ends the body at the declared length.
	body := make([]byte, 0, min(n, firstRead))
	for int64(len(body)) < n {
		if len(body) == cap(body) {
			// Double, up to the declared length.
			body = slices.Grow(body, int(min(int64(cap(body)), n-int64(len(body)))))
		}
		m, err := r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+m]
		if err == io.EOF && int64(len(body)) < n {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
	}
	return body, nil
}

func requestMediaType(header string) (string, error) {
	unsupported := func(detail string) error {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported-media-type", detail: detail,
			fields: []store.FieldError{{Field: "Content-Type", Detail: detail}}}
	}
	if header == mediaJSON { // what nearly every client sends
		return mediaJSON, nil
	}
	if strings.TrimSpace(header) == "" {
		return "", unsupported("Content-Type is required: application/json or application/x-www-form-urlencoded")
	}
	media, params, err := mime.ParseMediaType(header)
	if err != nil {
		return "", unsupported(fmt.Sprintf("malformed Content-Type %q", header))
	}
	if media != mediaJSON && media != mediaForm {
		return "", unsupported(fmt.Sprintf("Content-Type %s is not accepted: use application/json or application/x-www-form-urlencoded", media))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", unsupported(fmt.Sprintf("charset %s is not accepted: use utf-8", cs))
	}
	return media, nil
}

// decodeJSONDrafts decodes one object, or with allowBatch an array of them.
func decodeJSONDrafts(body []byte, allowBatch bool) ([]store.Draft, bool, error) {
	if d, ok := decodeSimpleDraft(body); ok {
		return []store.Draft{d}, false, nil
	}
	return decodeAnyJSONDrafts(body, allowBatch)
}

// decodeAnyJSONDrafts is decodeJSONDrafts for any body, with an error that
// says what is wrong with it. encoding/json is lenient where the API is not
// (invalid UTF-8, lone surrogates, duplicate and case-folded keys), so
// those are checked here.
func decodeAnyJSONDrafts(body []byte, allowBatch bool) ([]store.Draft, bool, error) {
	if !utf8.Valid(body) {
		return nil, false, badRequest("invalid-json", "the body is not valid UTF-8")
	}
	if err := checkSurrogates(body); err != nil {
		return nil, false, badRequest("invalid-json", err.Error())
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, badRequest("invalid-json", "the body is empty: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var items []json.RawMessage
	batch := trimmed[0] == '['
	switch {
	case batch && !allowBatch:
		return nil, false, badRequest("invalid-json", "POST /fact takes one JSON object; send arrays to POST /facts")
	case batch:
		if err := dec.Decode(&items); err != nil {
			return nil, false, jsonSyntaxError(err)
		}
	default:
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false, jsonSyntaxError(err)
		}
		items = []json.RawMessage{raw}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false, badRequest("invalid-json", "unexpected data after the JSON value")
	}
	if batch && (len(items) == 0 || len(items) > MaxBatch) {
		return nil, false, badRequest("invalid-batch",
			fmt.Sprintf("a batch must hold 1 to %d facts, got %d", MaxBatch, len(items)))
	}
	drafts := make([]store.Draft, len(items))
	var fields []store.FieldError
	for i, raw := range items {
		prefix := ""
		if batch {
			prefix = fmt.Sprintf("[%d].", i)
		}
		var errs []store.FieldError
		drafts[i], errs = decodeJSONDraft(raw, prefix)
		fields = append(fields, errs...)
	}
	if len(fields) > 0 {
		return nil, false, badRequest("invalid-fact", "the request has invalid fields", fields...)
	}
	return drafts, batch, nil
}

func jsonSyntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return badRequest("invalid-json", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se))
	}
	return badRequest("invalid-json", "malformed JSON: "+err.Error())
}

// decodeJSONDraft decodes one syntactically valid JSON value into a draft.
func decodeJSONDraft(raw json.RawMessage, prefix string) (store.Draft, []store.FieldError) {
	var d store.Draft
	fail := func(field, detail string) []store.FieldError {
		return []store.FieldError{{Field: prefix + field, Detail: detail}}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		field := strings.TrimSuffix(prefix, ".")
		if field == "" {
			field = "body"
		}
		return d, []store.FieldError{{Field: field, Detail: "must be a JSON object"}}
	}
	var errs []store.FieldError
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return d, fail("", "malformed JSON object")
		}
		key := tok.(string) // object keys are always strings
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return d, fail(key, "malformed JSON value")
		}
		if seen[key] {
			errs = append(errs, store.FieldError{Field: prefix + key, Detail: "duplicate field"})
			continue
		}
		seen[key] = true
		switch key {
		case "info", "source":
			s, ok := jsonString(value, key == "source")
			if !ok {
				errs = append(errs, store.FieldError{Field: prefix + key, Detail: "must be a string"})
			} else if key == "info" {
				d.Info = s
			} else {
				d.Source = s
			}
		default:
			errs = append(errs, store.FieldError{Field: prefix + key, Detail: "unknown field: only info and source are accepted"})
		}
	}
	if !seen["info"] {
		errs = append(errs, store.FieldError{Field: prefix + "info", Detail: "is required"})
	}
	return d, errs
}

func jsonString(v json.RawMessage, nullable bool) (string, bool) {
	if nullable && string(v) == "null" {
		return "", true
	}
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// checkSurrogates rejects \u escapes that encode half of a UTF-16 surrogate
// pair: encoding/json would silently turn them into U+FFFD.
func checkSurrogates(body []byte) error {
	inString := false
	for i := 0; i < len(body); i++ {
		switch b := body[i]; {
		case b == '"':
			inString = !inString
		case b == '\\' && inString && i+1 < len(body):
			i++
			if body[i] != 'u' {
				continue
			}
			r, ok := hex4(body, i+1)
			if !ok {
				continue // the decoder reports the syntax error
			}
			i += 4
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return errors.New("the body contains a lone UTF-16 low surrogate escape")
			case r >= 0xD800 && r <= 0xDBFF:
				low, ok := rune(0), i+2 < len(body) && body[i+1] == '\\' && body[i+2] == 'u'
				if ok {
					low, ok = hex4(body, i+3)
				}
				if !ok || low < 0xDC00 || low > 0xDFFF {
					return errors.New("the body contains a lone UTF-16 high surrogate escape")
				}
				i += 6
			}
		}
	}
	return nil
}

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

func decodeFormDraft(body []byte) ([]store.Draft, error) {
	if !utf8.Valid(body) {
		return nil, badRequest("invalid-form", "the body is not valid UTF-8")
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("invalid-form", "malformed form body: "+err.Error())
	}
	var d store.Draft
	var fields []store.FieldError
	for key, vs := range values {
		switch {
		case key != "info" && key != "source":
			fields = append(fields, store.FieldError{Field: key, Detail: "unknown field: only info and source are accepted"})
		case len(vs) > 1:
			fields = append(fields, store.FieldError{Field: key, Detail: "duplicate field"})
		case !utf8.ValidString(vs[0]):
			fields = append(fields, store.FieldError{Field: key, Detail: "must be valid UTF-8"})
		case key == "info":
			d.Info = vs[0]
		default:
			d.Source = vs[0]
		}
	}
	if _, ok := values["info"]; !ok {
		fields = append(fields, store.FieldError{Field: "info", Detail: "is required"})
	}
	if len(fields) > 0 {
		return nil, badRequest("invalid-fact", "the request has invalid fields", fields...)
	}
	return []store.Draft{d}, nil
}

// validateDrafts normalizes drafts in place and checks them.
func validateDrafts(drafts []store.Draft, batch bool) error {
	var fields []store.FieldError
	for i := range drafts {
		prefix := ""
		if batch {
			prefix = fmt.Sprintf("[%d].", i)
		}
		drafts[i] = drafts[i].Normalize()
		fields = append(fields, drafts[i].Validate(prefix)...)
	}
	if len(fields) > 0 {
		return badRequest("invalid-fact", "the request has invalid fields", fields...)
	}
	return nil
}

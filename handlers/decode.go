package handlers

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"factstream/middleware"
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
		var tooSlow *middleware.BodyTimeoutError
		if errors.As(err, &tooBig) || errors.As(err, &tooSlow) {
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

// jsonOptions decode a publish body strictly: member names are matched
// exactly (case-sensitive), unknown and duplicate names are refused, and
// so are invalid UTF-8 and lone surrogate escapes, which a lenient decoder
// would turn into U+FFFD.
var jsonOptions = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// jsonDraft is one fact of a JSON body as it arrives.
type jsonDraft struct {
	Info   jsonString `json:"info"`
	Source jsonString `json:"source"`
}

// jsonString is a string member that remembers whether it was there and
// whether it was null, which a plain string or *string cannot tell apart.
type jsonString struct {
	s             string
	present, null bool
}

// errNotString is what a jsonString refuses: any value but a string or
// null. The decoder reports it with the member's JSON pointer.
var errNotString = errors.New("must be a string")

// UnmarshalJSONFrom reads the member's value.
func (m *jsonString) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	m.present = true
	switch dec.PeekKind() {
	case 'n':
		m.null = true
		_, err := dec.ReadToken()
		return err
	case '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		m.s = tok.String()
		return nil
	}
	if err := dec.SkipValue(); err != nil {
		return err
	}
	return errNotString
}

// decodeJSONDrafts decodes one object, or with allowBatch an array of them.
func decodeJSONDrafts(body []byte, allowBatch bool) ([]store.Draft, bool, error) {
	if d, ok := decodeSimpleDraft(body); ok {
		return []store.Draft{d}, false, nil
	}
	return decodeAnyJSONDrafts(body, allowBatch)
}

// decodeAnyJSONDrafts is decodeJSONDrafts for any body, with an error that
// says what is wrong with it.
func decodeAnyJSONDrafts(body []byte, allowBatch bool) ([]store.Draft, bool, error) {
	start := 0
	for start < len(body) && (body[start] == ' ' || body[start] == '\t' || body[start] == '\r' || body[start] == '\n') {
		start++
	}
	if start == len(body) {
		return nil, false, badRequest("invalid-json", "the body is empty: send a JSON object")
	}
	batch := body[start] == '['
	var items []jsonDraft
	var err error
	switch {
	case batch && !allowBatch:
		return nil, false, badRequest("invalid-json", "POST /fact takes one JSON object; send arrays to POST /facts")
	case batch:
		items, err = decodeJSONBatch(body)
	default:
		items = make([]jsonDraft, 1)
		if err = json.Unmarshal(body, &items[0], jsonOptions); err != nil {
			err = jsonError(err, false)
		}
	}
	if err != nil {
		return nil, false, err
	}
	drafts := make([]store.Draft, len(items))
	var fields []store.FieldError
	for i, it := range items {
		switch {
		case !it.Info.present:
			fields = append(fields, store.FieldError{Field: itemPrefix(batch, i) + "info", Detail: "is required"})
		case it.Info.null:
			fields = append(fields, store.FieldError{Field: itemPrefix(batch, i) + "info", Detail: errNotString.Error()})
		}
		drafts[i] = store.Draft{Info: it.Info.s, Source: it.Source.s} // a null source is none
	}
	if len(fields) > 0 {
		return nil, false, badRequest("invalid-fact", "the request has invalid fields", fields...)
	}
	return drafts, batch, nil
}

// decodeJSONBatch decodes an array of 1 to MaxBatch facts.
func decodeJSONBatch(body []byte) ([]jsonDraft, error) {
	var items []jsonDraft
	if err := json.Unmarshal(body, &items, jsonOptions); err != nil {
		return nil, jsonError(err, true)
	}
	if len(items) == 0 || len(items) > MaxBatch {
		return nil, badRequest("invalid-batch", fmt.Sprintf("a batch must hold 1 to %d facts, got %d", MaxBatch, len(items)))
	}
	return items, nil
}

// itemPrefix is what precedes a member's name in a field error: nothing
// for a single fact, "[i]." for the i-th of a batch.
func itemPrefix(batch bool, i int) string {
	if !batch {
		return ""
	}
	return "[" + strconv.Itoa(i) + "]."
}

// jsonError turns a decoding error into the problem a client is told:
// malformed JSON as a whole, or a field error naming the member (or the
// batch item) at fault.
func jsonError(err error, batch bool) error {
	var syn *jsontext.SyntacticError
	var sem *json.SemanticError
	switch {
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		field, _ := fieldOf(syn.JSONPointer, batch)
		return badRequest("invalid-fact", "the request has invalid fields", store.FieldError{Field: field, Detail: "duplicate field"})
	case errors.As(err, &syn):
		return badRequest("invalid-json", fmt.Sprintf("malformed JSON at byte %d: %v", syn.ByteOffset, syn.Err))
	case errors.As(err, &sem):
		field, member := fieldOf(sem.JSONPointer, batch)
		detail := "must be a JSON object" // the body, or an item of the batch
		switch {
		case errors.Is(sem.Err, json.ErrUnknownName):
			detail = "unknown field: only info and source are accepted"
		case member:
			detail = errNotString.Error()
		}
		return badRequest("invalid-fact", "the request has invalid fields", store.FieldError{Field: field, Detail: detail})
	}
	return badRequest("invalid-json", "malformed JSON: "+err.Error())
}

// fieldOf names the part of the body a JSON pointer points at, as field
// errors do: "info", "[3].info", "[3]" for an item of a batch, "body" for
// the whole; member reports whether it is a member of a fact.
func fieldOf(ptr jsontext.Pointer, batch bool) (field string, member bool) {
	depth := 0
	for tok := range ptr.Tokens() {
		switch {
		case depth == 0 && batch:
			field = "[" + tok + "]"
		case depth == 0:
			field, member = tok, true
		default:
			field, member = field+"."+tok, true
		}
		depth++
	}
	if field == "" {
		return "body", false
	}
	return field, member
}

func decodeFormDraft(body []byte) ([]store.Draft, error) {
	if !utf8.Valid(body) {
		return nil, badRequest("invalid-form", "the body is not valid UTF-8")
	}
	// curl -d sends a form Content-Type unless told otherwise; a JSON body
	// under it would otherwise be refused as an unknown form field named
	// after the whole body. No form the API accepts starts with { or [.
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		detail := "the body looks like JSON but was sent as application/x-www-form-urlencoded: send Content-Type: application/json (curl -H 'Content-Type: application/json')"
		return nil, &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported-media-type", detail: detail,
			fields: []store.FieldError{{Field: "Content-Type", Detail: detail}}}
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

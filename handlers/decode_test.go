package handlers

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"factstream/store"
)

// cutReader ends a body early, as a client that goes away does.
type cutReader struct{}

func (cutReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// A declared Content-Length costs memory only as its bytes arrive: a client
// that announces a large body and sends a few bytes must not make the
// server allocate what it announced, however large max_body is.
func TestDeclaredLengthIsNotAllocatedUpFront(t *testing.T) {
	const maxBody, declared = 1 << 30, 256 << 20
	req := httptest.NewRequest(http.MethodPost, "/fact", io.MultiReader(strings.NewReader(`{"info":"x`), cutReader{}))
	req.Header.Set("Content-Type", mediaJSON)
	req.ContentLength = declared
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = req

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readFactRequest(c, maxBody, false)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a body cut short was accepted")
	}
	if ae := asAPIError(err); ae.status != http.StatusBadRequest || ae.code != "unreadable-body" {
		t.Fatalf("a body cut short gave %d %s, want 400 unreadable-body", ae.status, ae.code)
	}
	// Anything in the process may allocate meanwhile; the announced size
	// is far beyond that.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("reading 10 bytes of a body announced as %d allocated %d bytes", declared, grew)
	}
}

// Bodies of every size up to max_body arrive whole, however the client
// splits them, with or without a declared length.
func TestBodiesArriveWhole(t *testing.T) {
	for _, size := range []int{1, 100, 4095, 4096, 70_000, 300_000} {
		for _, declared := range []bool{true, false} {
			body := strings.Repeat("a", size)
			req := httptest.NewRequest(http.MethodPost, "/fact", io.MultiReader(strings.NewReader(body[:size/2]), strings.NewReader(body[size/2:])))
			req.ContentLength = -1
			if declared {
				req.ContentLength = int64(size)
			}
			got, err := readBody(httptest.NewRecorder(), req, 1<<20)
			if err != nil || string(got) != body {
				t.Fatalf("size %d (declared %v): read %d bytes, %v", size, declared, len(got), err)
			}
		}
	}
}

// Each way a JSON body can be wrong gets a 400 whose code and field error
// say which part to fix.
func TestJSONErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		body, code, field, detail string
	}{
		{`{"info":"x","extra":true}`, "invalid-fact", "extra", "unknown field: only info and source are accepted"},
		{`{"Info":"x"}`, "invalid-fact", "Info", "unknown field: only info and source are accepted"},
		{`{"info":"x","a/b~c":1}`, "invalid-fact", "a/b~c", "unknown field: only info and source are accepted"},
		{`{"info":"a","info":"b"}`, "invalid-fact", "info", "duplicate field"},
		{`{"info":42}`, "invalid-fact", "info", "must be a string"},
		{`{"info":null}`, "invalid-fact", "info", "must be a string"},
		{`{"info":{"a":[1]}}`, "invalid-fact", "info", "must be a string"},
		{`{"info":"x","source":true}`, "invalid-fact", "source", "must be a string"},
		{`{"source":null}`, "invalid-fact", "info", "is required"},
		{`"info"`, "invalid-fact", "body", "must be a JSON object"},
		{`[{"info":"ok"},7]`, "invalid-fact", "[1]", "must be a JSON object"},
		{`[{"info":"ok"},{"info":1}]`, "invalid-fact", "[1].info", "must be a string"},
		{`[{"info":"ok"},{"info":"a","info":"b"}]`, "invalid-fact", "[1].info", "duplicate field"},
		{`[{"info":"ok"},{"nfo":"a"}]`, "invalid-fact", "[1].nfo", "unknown field: only info and source are accepted"},
		{`[{"info":"ok"},{}]`, "invalid-fact", "[1].info", "is required"},
		{"{\"info\":\"a\xffb\"}", "invalid-json", "body", ""},
		{`{"info":"a\ud800b"}`, "invalid-json", "body", ""},
		{`{"info":"\udc00"}`, "invalid-json", "body", ""},
		{`{"info":"x"} {"info":"y"}`, "invalid-json", "body", ""},
		{`{"info":`, "invalid-json", "body", ""},
		{" \n", "invalid-json", "body", ""},
		{`[]`, "invalid-batch", "body", ""},
	} {
		_, _, err := decodeJSONDrafts([]byte(tc.body), true)
		ae := asAPIError(err)
		if ae.status != http.StatusBadRequest || ae.code != tc.code || len(ae.fields) != 1 || ae.fields[0].Field != tc.field ||
			(tc.detail != "" && ae.fields[0].Detail != tc.detail) {
			t.Errorf("%q: got %d %s %+v; want 400 %s naming %s (%s)", tc.body, ae.status, ae.code, ae.fields, tc.code, tc.field, tc.detail)
		}
	}
}

// Escapes, surrogate pairs and a null source decode to the text they
// stand for.
func TestJSONDecodesEscapes(t *testing.T) {
	drafts, batch, err := decodeJSONDrafts([]byte(` {"source" : null, "info":"\ud83e\udd88 \"q\" \\ \/ \u00e9\n"} `), false)
	if err != nil || batch || len(drafts) != 1 {
		t.Fatalf("got %+v, %v, %v", drafts, batch, err)
	}
	if want := "🦈 \"q\" \\ / é\n"; drafts[0].Info != want || drafts[0].Source != "" {
		t.Fatalf("decoded %+v, want info %q and no source", drafts[0], want)
	}
}

// BenchmarkDecodeJSONDrafts decodes the body nearly every publisher sends.
func BenchmarkDecodeJSONDrafts(b *testing.B) {
	body := []byte(`{"info":"fact 12345 sent at 1763750000000000000","source":"https://bench.example/pub/3"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeJSONDrafts(body, false); err != nil {
			b.Fatal(err)
		}
	}
}

// A store that refuses a request for its size (Redis takes at most 16 MiB
// in one script call) answers 413 naming the body, not 500: only a
// max_body raised far above its default lets such a request through.
func TestStoreRefusalForSizeIsA413(t *testing.T) {
	err := fmt.Errorf("append to redis: %w", &store.TooLargeError{Size: 17 << 20, Max: 16 << 20})
	ae := asAPIError(err)
	if ae.status != http.StatusRequestEntityTooLarge || ae.code != "body-too-large" ||
		len(ae.fields) != 1 || ae.fields[0].Field != "body" || !strings.Contains(ae.detail, "16777216") {
		t.Fatalf("a request too large for the store gave %d %s %q %+v, want 413 body-too-large naming the body and the bound",
			ae.status, ae.code, ae.detail, ae.fields)
	}
}

package handlers

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
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

package handlers_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"factstream/handlers"
	"factstream/hub"
	"factstream/store"
	"factstream/store/memory"
)

// syncBuffer is a log destination the server's goroutines write to while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A path with a trailing slash too many or too few is redirected to the
// route it names, by a response that went through every middleware: it
// has a request id and the security headers, and it is logged.
func TestTrailingSlashRedirectsGoThroughMiddleware(t *testing.T) {
	var logs syncBuffer
	h := hub.New(hub.Options{})
	st := memory.New(store.Options{})
	srv := httptest.NewServer(handlers.Routes(handlers.Deps{
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
		Store:    st,
		Hub:      h,
		Stream:   handlers.StreamOptions{Retry: time.Second, Heartbeat: time.Minute, WriteTimeout: time.Second},
		MaxBody:  64 << 10,
		Instance: handlers.Instance{ID: "t", StoreKind: "memory", Version: "test", Started: time.Now()},
	}))
	t.Cleanup(func() { srv.Close(); h.Close(); st.Close() })
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for i, tc := range []struct {
		method, path string
		want         int
		location     string
	}{
		{http.MethodGet, "/status/", http.StatusMovedPermanently, "/status"},
		{http.MethodHead, "/status/", http.StatusMovedPermanently, "/status"},
		{http.MethodGet, "/facts/?after=3&limit=2", http.StatusMovedPermanently, "/facts?after=3&limit=2"},
		{http.MethodGet, "/facts/0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77/", http.StatusMovedPermanently, "/facts/0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77"},
		{http.MethodPost, "/fact/", http.StatusPermanentRedirect, "/fact"},
		{http.MethodGet, "/nothing/", http.StatusNotFound, ""},
		{http.MethodGet, "//evil.example/", http.StatusNotFound, ""},
		{http.MethodPost, "/status/", http.StatusNotFound, ""}, // no POST /status to send it to
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("redirect-%d", i)
			req.Header.Set("X-Request-ID", id)
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want || resp.Header.Get("Location") != tc.location {
				t.Fatalf("%d Location %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.want, tc.location)
			}
			if resp.Header.Get("X-Request-ID") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("headers %v: the answer skipped the middleware", resp.Header)
			}
			if !slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(line string) bool {
				return strings.Contains(line, "request_id="+id+" ") && strings.Contains(line, fmt.Sprintf("status=%d", tc.want))
			}) {
				t.Fatalf("no access log line for it:\n%s", logs.String())
			}
		})
	}
}

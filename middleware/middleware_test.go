package middleware

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func newEngine(log *slog.Logger, h gin.HandlerFunc) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(RequestID(), AccessLog(log), Recover(log))
	r.GET("/", h)
	return r
}

func TestRequestIDIsEchoedOrMade(t *testing.T) {
	r := newEngine(slog.New(slog.DiscardHandler), func(c *gin.Context) { c.String(200, c.GetString("request_id")) })
	cases := []struct {
		name, sent string
		keep       bool
	}{
		{"Plain", "abc-123_X.y", true},
		{"None", "", false},
		{"WithSpace", "a b", false},
		{"Injection", "x\r\nSet-Cookie: y", false},
		{"TooLong", strings.Repeat("a", 129), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if tc.sent != "" {
				req.Header[http.CanonicalHeaderKey(RequestIDHeader)] = []string{tc.sent}
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			got := w.Header().Get(RequestIDHeader)
			if got == "" || got != w.Body.String() {
				t.Fatalf("header %q, context %q", got, w.Body.String())
			}
			if (got == tc.sent) != tc.keep {
				t.Fatalf("sent %q, got %q; keep = %v", tc.sent, got, tc.keep)
			}
		})
	}
}

func TestAccessLogWritesOneLinePerRequest(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r := newEngine(log, func(c *gin.Context) {
		c.Set("events_sent", 3)
		c.Set("stream_end", "client-closed")
		c.String(200, "ok")
	})
	req := httptest.NewRequest("GET", "/?access_token=secret", nil)
	req.Header.Set(RequestIDHeader, "req-1")
	r.ServeHTTP(httptest.NewRecorder(), req)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1: %s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"request_id": "req-1", "status": 200.0, "path": "/", "events_sent": 3.0, "stream_end": "client-closed"} {
		if rec[k] != want {
			t.Errorf("log %s = %v, want %v", k, rec[k], want)
		}
	}
	if strings.Contains(lines[0], "secret") {
		t.Error("the log line holds the query string")
	}
}

func TestRecoverAnswers500AndLogs(t *testing.T) {
	var buf bytes.Buffer
	r := newEngine(slog.New(slog.NewTextHandler(&buf, nil)), func(c *gin.Context) { panic("boom") })
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusInternalServerError || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, type %q", w.Code, w.Header().Get("Content-Type"))
	}
	if strings.Contains(w.Body.String(), "boom") || !strings.Contains(buf.String(), "boom") {
		t.Fatalf("panic value must be logged, not shown: body %s", w.Body.String())
	}
}

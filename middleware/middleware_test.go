package middleware

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
	r := newEngine(slog.New(slog.DiscardHandler), func(c *gin.Context) { c.String(200, RequestIDOf(c)) })
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
		SetStreamEnd(c, 3, "client-closed")
		c.String(200, "ok")
	})
	req := httptest.NewRequest("GET", "/?access_token=secret", nil)
	req.Header.Set(RequestIDHeader, "req-1")
	r.ServeHTTP(httptest.NewRecorder(), req)
	rec := onlyLogLine(t, &buf, map[string]any{"request_id": "req-1", "status": 200.0, "path": "/", "events_sent": 3.0, "stream_end": "client-closed"})
	if strings.Contains(fmt.Sprint(rec), "secret") {
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

// A stream's line is written once, when the stream ends, with its figures
// and its whole duration: whether it ends while its handler still runs
// (the client left at once) or long after.
func TestDeferLogWritesTheStreamsLineWhenItEnds(t *testing.T) {
	for _, tc := range []struct {
		name        string
		endInHandle bool
	}{
		{"EndsAfterTheHandler", false},
		{"EndsBeforeTheHandlerReturns", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			var finish func(int, string)
			r := newEngine(log, func(c *gin.Context) {
				c.Status(http.StatusOK)
				finish = DeferLog(c, log)
				time.Sleep(20 * time.Millisecond) // the stream's duration so far
				if tc.endInHandle {
					finish(2, "client-closed")
				}
			})
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set(RequestIDHeader, "req-7")
			r.ServeHTTP(httptest.NewRecorder(), req)
			if !tc.endInHandle {
				if buf.Len() != 0 {
					t.Fatalf("logged before the stream ended: %s", buf.String())
				}
				finish(2, "client-closed")
			}
			finish(5, "again") // a second call changes nothing
			rec := onlyLogLine(t, &buf, map[string]any{"request_id": "req-7", "status": 200.0, "events_sent": 2.0, "stream_end": "client-closed"})
			if d, _ := rec["duration_ms"].(float64); d < 20 {
				t.Errorf("duration_ms = %v, want the whole stream's (at least 20)", rec["duration_ms"])
			}
		})
	}
}

// Without AccessLog in the chain nothing writes the line.
func TestDeferLogWithoutAccessLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r := gin.New()
	r.Use(RequestID())
	r.GET("/", func(c *gin.Context) {
		c.Status(http.StatusOK)
		DeferLog(c, log)(1, "client-closed")
	})
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if buf.Len() != 0 {
		t.Fatalf("logged without AccessLog: %s", buf.String())
	}
}

// With the log at warn a stream's line is never written, so DeferLog
// captures nothing for it: thousands of streams connecting at once then
// allocate no line each, only to throw it away.
func TestDeferLogCapturesNothingForALineTheLogLeavesOut(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	allocs := -1.0
	r := newEngine(log, func(c *gin.Context) {
		c.Status(http.StatusOK)
		allocs = testing.AllocsPerRun(100, func() { DeferLog(c, log)(1, "client-closed") })
	})
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if allocs != 0 || buf.Len() != 0 {
		t.Fatalf("%v allocations to defer a line the log leaves out, and logged %q; want none", allocs, buf.String())
	}
}

// onlyLogLine checks that buf holds one JSON log line with the fields of
// want, and returns all its fields.
func onlyLogLine(t *testing.T, buf *bytes.Buffer, want map[string]any) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1: %s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("log %s = %v, want %v", k, rec[k], v)
		}
	}
	return rec
}

// Probes ask for /healthz and /readyz every few seconds: their passing
// answers are logged at debug, so that the info log keeps the requests
// people make; a failing health check still comes out at its level.
func TestHealthChecksAreLoggedAtDebugUnlessTheyFail(t *testing.T) {
	cases := []struct {
		name, path string
		status     int
		level      string
	}{
		{"Healthz", "/healthz", 200, "DEBUG"},
		{"Readyz", "/readyz", 200, "DEBUG"},
		{"ReadyzFailing", "/readyz", 503, "ERROR"},
		{"HealthzRefused", "/healthz", 429, "INFO"},
		{"OtherPath", "/facts", 200, "INFO"},
		{"ServerError", "/facts", 500, "ERROR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			r := gin.New()
			r.Use(AccessLog(log))
			r.GET(tc.path, func(c *gin.Context) { c.Status(tc.status) })
			r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", tc.path, nil))
			onlyLogLine(t, &buf, map[string]any{"path": tc.path, "level": tc.level})

			// At info, a passing health check writes nothing.
			buf.Reset()
			log = slog.New(slog.NewJSONHandler(&buf, nil))
			r = gin.New()
			r.Use(AccessLog(log))
			r.GET(tc.path, func(c *gin.Context) { c.Status(tc.status) })
			r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", tc.path, nil))
			if logged := buf.Len() > 0; logged != (tc.level != "DEBUG") {
				t.Fatalf("at info level, logged = %v: %q", logged, buf.String())
			}
		})
	}
}

// Package middleware holds the cross-cutting parts of request handling:
// request ids, access logging, panic recovery, security headers, CORS,
// bearer-token authentication, the publish rate limit and metrics.
package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-ID"

// canonicalRequestID is RequestIDHeader as net/http keys it in a Header.
const canonicalRequestID = "X-Request-Id"

// RequestID gives every request an id: the client's X-Request-ID when it is
// short and plain (so ids can be followed across services), a new one
// otherwise. It is echoed in the response, and RequestIDOf reads it back.
//
// New ids are a random prefix, fixed per process, and a counter: unique
// across instances and restarts without reading the system's random source
// on every request.
func RequestID() gin.HandlerFunc {
	prefix := strings.ReplaceAll(uuid.NewString(), "-", "")[:16] + "-"
	var counter atomic.Uint64
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !plainID(id) {
			var buf [64]byte
			id = string(strconv.AppendUint(append(buf[:0], prefix...), counter.Add(1), 10))
		}
		// Set directly under the canonical key: Header.Set would
		// canonicalise the name on every request.
		c.Writer.Header()[canonicalRequestID] = []string{id}
		c.Next()
	}
}

// RequestIDOf returns the id RequestID gave the request, or "" without
// RequestID in the chain. It is read from the response header rather than
// kept in the context: gin makes a map for a context's first key, which
// was a tenth of what a publish cost in the handlers.
func RequestIDOf(c *gin.Context) string {
	if v := c.Writer.Header()[canonicalRequestID]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// plainID accepts ids that are safe to echo and log: no header or log
// injection through a client-chosen value.
func plainID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// AccessLog writes one structured line per request when it ends; for a
// stream that is when it closes, with the events sent and why it ended.
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		if v, ok := c.Get(deferredKey); ok {
			v.(*deferredLine).started(start) // the stream writes it when it ends
			return
		}
		if !log.Enabled(c.Request.Context(), levelOf(c.Request.URL.Path, c.Writer.Status())) {
			return
		}
		line := accessLine{log: log, start: start}
		line.capture(c)
		if end, ok := streamEndOf(c); ok {
			line.attrs = append(line.attrs, slog.Int("events_sent", end.sent), slog.String("stream_end", end.reason))
		}
		line.write(c.Request.Context(), time.Now())
	}
}

// accessLine is a request's log line in the making. A stream's line is
// kept (in a deferredLine) for as long as the stream lives, so it holds
// its level, not what the level was worked out from.
type accessLine struct {
	log      *slog.Logger
	start    time.Time
	attrs    []slog.Attr
	level    slog.Level
	duration int // index of duration_ms in attrs, set by write
}

func (l *accessLine) capture(c *gin.Context) {
	status := c.Writer.Status()
	l.level = levelOf(c.Request.URL.Path, status)
	l.attrs = append(l.attrs,
		slog.String("request_id", RequestIDOf(c)),
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
	)
	l.duration = len(l.attrs)
	l.attrs = append(l.attrs,
		slog.Attr{},
		slog.Int("bytes", c.Writer.Size()),
		slog.String("remote", c.ClientIP()),
	)
	if p := ProblemOf(c); p != "" {
		l.attrs = append(l.attrs, slog.String("problem", p))
	}
}

func (l *accessLine) write(ctx context.Context, end time.Time) {
	l.attrs[l.duration] = slog.Float64("duration_ms", float64(end.Sub(l.start).Microseconds())/1000)
	l.log.LogAttrs(ctx, l.level, "request", l.attrs...)
}

// levelOf is the level of a request's log line: errors for server
// failures, debug for health checks that pass (probes ask every few
// seconds, and would bury everything else), info otherwise.
func levelOf(path string, status int) slog.Level {
	switch {
	case status >= http.StatusInternalServerError:
		return slog.LevelError
	case status < http.StatusBadRequest && (path == "/healthz" || path == "/readyz"):
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// deferredLine is the line of a stream that outlives its handler. The
// stream may end, on the hub's writer, before AccessLog has handed over
// the request's start time, or after: whichever comes second writes it.
type deferredLine struct {
	mu    sync.Mutex
	line  accessLine
	known bool // start is set
	ended bool
	end   time.Time
}

func (d *deferredLine) started(at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.line.start, d.known = at, true
	if d.ended {
		d.line.write(context.Background(), d.end)
	}
}

func (d *deferredLine) finish(eventsSent int, end string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return
	}
	d.ended, d.end = true, time.Now()
	d.line.attrs = append(d.line.attrs, slog.Int("events_sent", eventsSent), slog.String("stream_end", end))
	if d.known {
		d.line.write(context.Background(), d.end)
	}
}

// DeferLog takes a request's access log line over from AccessLog, for a
// stream that outlives its handler (a connection taken over by the hub).
// It captures the request now, since a gin.Context is reused once its
// handler returns, and returns the function that writes the line, with
// the stream's figures and the whole duration, when the stream ends; the
// function may be called from any goroutine, once. Without AccessLog in
// the chain the line is never written.
func DeferLog(c *gin.Context, log *slog.Logger) func(eventsSent int, end string) {
	if !log.Enabled(c.Request.Context(), levelOf(c.Request.URL.Path, c.Writer.Status())) {
		// Nothing to capture (AccessLog too leaves the line out): with
		// the log at warn, a stream then costs no line while connecting.
		return func(int, string) {}
	}
	d := &deferredLine{line: accessLine{log: log}}
	d.line.capture(c)
	c.Set(deferredKey, d)
	return d.finish
}

// Recover turns a panic in a handler into a logged 500 instead of a dead
// connection. http.ErrAbortHandler is re-raised: it is how a handler asks
// the server to drop the connection.
func Recover(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.LogAttrs(c.Request.Context(), slog.LevelError, "handler panicked",
				slog.String("request_id", RequestIDOf(c)), slog.Any("panic", v))
			if !c.Writer.Written() {
				SetProblem(c, "internal")
				c.Data(http.StatusInternalServerError, "application/problem+json",
					[]byte(`{"type":"urn:factstream:problem:internal","title":"Internal Server Error","status":500,"detail":"internal error; it has been logged"}`+"\n"))
			}
			c.Abort()
		}()
		c.Next()
	}
}

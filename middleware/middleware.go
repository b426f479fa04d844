// Package middleware holds the cross-cutting parts of request handling:
// request ids, access logging and panic recovery.
package middleware

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-ID"

// RequestID gives every request an id: the client's X-Request-ID when it is
// short and plain (so ids can be followed across services), a new one
// otherwise. It is stored in the context under "request_id" and echoed.
func RequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !plainID(id) {
			id = uuid.NewString()
		}
		c.Set("request_id", id)
		c.Header(RequestIDHeader, id)
		c.Next()
	}
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
		status := c.Writer.Status()
		attrs := []slog.Attr{
			slog.String("request_id", c.GetString("request_id")),
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.Int("bytes", c.Writer.Size()),
			slog.String("remote", c.ClientIP()),
		}
		if n, ok := c.Get("events_sent"); ok {
			attrs = append(attrs, slog.Any("events_sent", n), slog.String("stream_end", c.GetString("stream_end")))
		}
		if p := c.GetString("problem"); p != "" {
			attrs = append(attrs, slog.String("problem", p))
		}
		level := slog.LevelInfo
		if status >= http.StatusInternalServerError {
			level = slog.LevelError
		}
		log.LogAttrs(c.Request.Context(), level, "request", attrs...)
	}
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
				slog.String("request_id", c.GetString("request_id")), slog.Any("panic", v))
			if !c.Writer.Written() {
				c.Data(http.StatusInternalServerError, "application/problem+json",
					[]byte(`{"type":"urn:factstream:problem:internal","title":"Internal Server Error","status":500,"detail":"internal error; it has been logged"}`))
			}
			c.Abort()
		}()
		c.Next()
	}
}

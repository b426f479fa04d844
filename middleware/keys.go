package middleware

import "github.com/gin-gonic/gin"

// contextKey names what a request's handlers tell the middleware around
// them through the gin context. Its values are unexported, so that the
// functions below are the only way to set or read them, each with its type.
//
// gin makes a context's key map on the first Set: the publishes that make
// up most requests set none (only problems, streams and deferred lines do).
type contextKey uint8

const (
	problemKey   contextKey = iota // string: the problem code of the response
	streamEndKey                   // streamEnd: how a stream ended
	deferredKey                    // *deferredLine: a line DeferLog took over
)

// SetProblem records the problem code of the response being written (the
// last part of its problem type URI), for the access log and the
// rejection counter.
func SetProblem(c *gin.Context, code string) { c.Set(problemKey, code) }

// ProblemOf returns the code SetProblem recorded, or "" when the response
// is not a problem.
func ProblemOf(c *gin.Context) string {
	v, _ := c.Get(problemKey)
	code, _ := v.(string)
	return code
}

// streamEnd is what a stream reports when its handler ends it.
type streamEnd struct {
	sent   int
	reason string
}

// SetStreamEnd records, for the access log line of a stream that ends in
// its handler, the events it sent and why it ended.
func SetStreamEnd(c *gin.Context, eventsSent int, reason string) {
	c.Set(streamEndKey, streamEnd{sent: eventsSent, reason: reason})
}

// streamEndOf returns what SetStreamEnd recorded, if anything.
func streamEndOf(c *gin.Context) (streamEnd, bool) {
	v, _ := c.Get(streamEndKey)
	end, ok := v.(streamEnd)
	return end, ok
}

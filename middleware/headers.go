package middleware

import "github.com/gin-gonic/gin"

// SecurityHeaders sets the headers every response carries. nosniff keeps
// browsers from running a JSON or text body as script or style;
// no-referrer keeps URLs, which may hold an access_token, out of the
// Referer of any request a response leads to. A handler may tighten or
// replace them (the dashboard page sets its own policy).
//
// The value slices are made once and shared by every response, which saves
// two allocations per request: net/http only reads them, and a handler that
// sets or adds a value gets a slice of its own (their capacity is full).
func SecurityHeaders() gin.HandlerFunc {
	nosniff, noReferrer := []string{"nosniff"}, []string{"no-referrer"}
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = noReferrer
		c.Next()
	}
}

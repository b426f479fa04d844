package middleware

import "github.com/gin-gonic/gin"

// SecurityHeaders sets the headers every response carries. nosniff keeps
// browsers from running a JSON or text body as script or style;
// no-referrer keeps URLs, which may hold an access_token, out of the
// Referer of any request a response leads to. A handler may tighten or
// replace them (the dashboard page sets its own policy).
func SecurityHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		c.Next()
	}
}

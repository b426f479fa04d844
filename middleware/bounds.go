package middleware

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// refusalLinger is how long a refused request's body may go on arriving
// after the answer. net/http reads and discards up to 256 KiB of it before
// closing: a client still writing its body then finishes and reads the
// answer, where closing on unread bytes would reset the connection under
// it and lose the answer. A body that comes slower is cut.
const refusalLinger = time.Second

// BodyBounds refuses a body before reading it: one whose declared
// Content-Length is over max gets 413 at once, and a POST with a
// Content-Encoding other than identity gets 415 (no encoding is decoded,
// so a compressed body would only be refused later as garbage). Either
// answers before reading the body and closes the connection, after at
// most refusalLinger of discarding what the client still sends: net/http
// would otherwise wait for up to 256 KiB of it, however slowly it came,
// to keep the connection open.
func BodyBounds(max int64, reject Reject) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		switch enc := strings.TrimSpace(r.Header.Get("Content-Encoding")); {
		case r.Method == http.MethodPost && enc != "" && !strings.EqualFold(enc, "identity"):
			c.Header("Connection", "close")
			reject(c, Rejection{Status: http.StatusUnsupportedMediaType, Code: "unsupported-encoding",
				Detail: "request bodies are taken without Content-Encoding (identity only)"})
		case max > 0 && r.ContentLength > max:
			c.Header("Connection", "close")
			reject(c, Rejection{Status: http.StatusRequestEntityTooLarge, Code: "body-too-large",
				Detail: fmt.Sprintf("the request body exceeds %d bytes", max)})
		default:
			c.Next()
			return
		}
		// Bounds the read net/http makes of the unread body after the answer.
		_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(refusalLinger))
	}
}

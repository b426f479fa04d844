package middleware

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
)

// BodyTimeoutError is the error a request body's Read returns once the
// body took longer than Limit to arrive.
type BodyTimeoutError struct {
	Limit time.Duration
}

func (e *BodyTimeoutError) Error() string {
	return fmt.Sprintf("the request body did not arrive within %s", e.Limit)
}

// Deadlines bounds a request in time on both sides, so that no client can
// hold a connection and its memory for as long as it likes: a body must
// arrive in full within read (its Read then fails with *BodyTimeoutError),
// and the answer must be taken within write, counted from the end of the
// body, or from the request's start when it has none (or when the handler
// never reads it to the end: read+write then). The server has no
// ReadTimeout or WriteTimeout of its own because either would end every
// stream; a request without a body (a stream's) gets no read deadline,
// and handlers that write for long (streams, exports) set a deadline per
// write, which replaces this one.
func Deadlines(read, write time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		now := time.Now()
		if r.Body == nil || r.Body == http.NoBody {
			// Most requests, streams included: no body, one deadline, and
			// a controller that stays on the stack.
			if write > 0 {
				_ = http.NewResponseController(c.Writer).SetWriteDeadline(now.Add(write))
			}
			c.Next()
			return
		}
		rc := http.NewResponseController(c.Writer)
		if read > 0 {
			_ = rc.SetReadDeadline(now.Add(read))
			r.Body = &timedBody{ReadCloser: r.Body, rc: rc, read: read, write: write}
		}
		if write > 0 {
			_ = rc.SetWriteDeadline(now.Add(read + write))
		}
		c.Next()
	}
}

// timedBody turns the deadline's error into a *BodyTimeoutError and, at
// the body's end, moves the write deadline to write from then.
type timedBody struct {
	io.ReadCloser
	rc          *http.ResponseController
	read, write time.Duration
	done        bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if !b.done && b.write > 0 {
			b.done = true
			_ = b.rc.SetWriteDeadline(time.Now().Add(b.write))
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = &BodyTimeoutError{Limit: b.read}
	}
	return n, err
}

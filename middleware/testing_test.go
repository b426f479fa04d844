package middleware

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gin-gonic/gin"
)

func init() { gin.SetMode(gin.TestMode) }

// testReject stands in for the handlers' problem writer: it records the
// code where the real one does and writes the status and code.
func testReject(c *gin.Context, r Rejection) {
	if r.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int(r.RetryAfter.Seconds()+0.999)))
	}
	SetProblem(c, r.Code)
	c.String(r.Status, r.Code)
	c.Abort()
}

// serve runs req through an engine with mw in front of a handler that
// answers 200 "ok", and returns the response.
func serve(tb testing.TB, req *http.Request, mw ...gin.HandlerFunc) *httptest.ResponseRecorder {
	tb.Helper()
	r := gin.New()
	r.Use(mw...)
	ok := func(c *gin.Context) { c.String(http.StatusOK, "ok") }
	r.GET("/x", ok)
	r.POST("/x", ok)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

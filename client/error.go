package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an answer of the service other than success: its problem
// document (RFC 9457) and status. Get it from any error of this package
// with errors.As.
type Error struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Type names the problem: "urn:factstream:problem:<code>".
	Type string `json:"type"`
	// Title is the status text.
	Title string `json:"title"`
	// Detail says what went wrong with this request.
	Detail string `json:"detail"`
	// Errors names each bad field of the request.
	Errors []FieldError `json:"errors"`
	// RetryAfter is the wait the server asked for (429, 503, 409), or 0.
	RetryAfter time.Duration `json:"-"`
}

// FieldError is one bad field of a request: "info", "source", "body",
// or "[3].info" inside a batch.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Error reads as the status, the detail and the fields.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", e.Status)
	if e.Title != "" {
		b.WriteString(" " + e.Title)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for i, f := range e.Errors {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + ": " + f.Detail)
		if i == len(e.Errors)-1 {
			b.WriteString(")")
		}
	}
	return b.String()
}

// Code is the last part of the problem type, such as "invalid-request" or
// "store-unavailable"; empty when the answer was no problem document.
func (e *Error) Code() string {
	code, ok := strings.CutPrefix(e.Type, "urn:factstream:problem:")
	if !ok {
		return ""
	}
	return code
}

// temporary reports whether the same request may succeed later.
func (e *Error) temporary() bool {
	switch e.Status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// problemFrom builds the Error of a response whose body (possibly cut
// short by the size bound) is body. An answer that is no problem document
// (a proxy's error page) still gives status and title.
func problemFrom(resp *http.Response, body []byte) *Error {
	e := &Error{}
	if json.Unmarshal(body, e) != nil || e.Status == 0 {
		*e = Error{}
	}
	e.Status = resp.StatusCode
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

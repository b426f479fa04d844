package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"factstream/hub"
	"factstream/middleware"
	"factstream/store"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail,omitempty"`
	Errors []store.FieldError `json:"errors,omitempty"`
}

// apiError is the one error vocabulary of the handlers: every failure a
// client should see is one, and writeError turns anything else into one.
type apiError struct {
	status     int
	code       string // short machine name, the last part of the problem type
	detail     string
	fields     []store.FieldError
	retryAfter time.Duration
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.detail) }

// badRequest is a 400; without fields it names the body as the culprit, so
// that every 400 tells a client which part to fix.
func badRequest(code, detail string, fields ...store.FieldError) *apiError {
	if len(fields) == 0 {
		fields = []store.FieldError{{Field: "body", Detail: detail}}
	}
	return &apiError{status: http.StatusBadRequest, code: code, detail: detail, fields: fields}
}

func fieldError(field, detail string) *apiError {
	return badRequest("invalid-request", detail, store.FieldError{Field: field, Detail: detail})
}

// problemType is the URI of a problem code; the codes are listed in the
// README.
func problemType(code string) string { return "urn:factstream:problem:" + code }

// asAPIError maps any error to what the client is told.
func asAPIError(err error) *apiError {
	var ae *apiError
	var tooBig *http.MaxBytesError
	var tooSlow *middleware.BodyTimeoutError
	var tooMany *store.TooLargeError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &tooSlow):
		return &apiError{status: http.StatusRequestTimeout, code: "request-timeout", detail: tooSlow.Error()}
	case errors.As(err, &tooBig):
		detail := fmt.Sprintf("the request body exceeds %d bytes", tooBig.Limit)
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "body-too-large", detail: detail,
			fields: []store.FieldError{{Field: "body", Detail: detail}}}
	case errors.As(err, &tooMany):
		detail := tooMany.Error() + "; send fewer facts per request"
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "body-too-large", detail: detail,
			fields: []store.FieldError{{Field: "body", Detail: detail}}}
	case errors.Is(err, store.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: "not-found", detail: "no fact has this id"}
	case errors.Is(err, store.ErrIdempotencyMismatch):
		return &apiError{status: http.StatusUnprocessableEntity, code: "idempotency-key-reused",
			detail: "this Idempotency-Key was used with a different request body"}
	case errors.Is(err, store.ErrOutcomeUnknown):
		return &apiError{status: http.StatusServiceUnavailable, code: "store-unavailable",
			detail:     "the fact store did not answer in time; the facts may have been stored: retry with the same Idempotency-Key",
			retryAfter: time.Second}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed):
		return &apiError{status: http.StatusServiceUnavailable, code: "store-unavailable",
			detail: "the fact store is unavailable; nothing was stored, retry later", retryAfter: time.Second}
	case errors.Is(err, hub.ErrFull):
		return &apiError{status: http.StatusServiceUnavailable, code: "too-many-streams",
			detail: "this instance serves its maximum number of streams", retryAfter: 5 * time.Second}
	case errors.Is(err, hub.ErrClientFull):
		return &apiError{status: http.StatusTooManyRequests, code: "too-many-client-streams",
			detail: "this address has its maximum number of streams open here; close one or retry later", retryAfter: 5 * time.Second}
	case errors.Is(err, hub.ErrClosed):
		return &apiError{status: http.StatusServiceUnavailable, code: "shutting-down",
			detail: "this instance is shutting down", retryAfter: time.Second}
	default:
		return &apiError{status: http.StatusInternalServerError, code: "internal",
			detail: "internal error; it has been logged"}
	}
}

// writeError answers with the problem err maps to. Server-side failures are
// logged with the request id; their details never reach the client.
func writeError(c *gin.Context, log *slog.Logger, err error) {
	ae := asAPIError(err)
	if ae.status >= 500 {
		log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("request_id", middleware.RequestIDOf(c)),
			slog.Int("status", ae.status), slog.String("error", err.Error()))
	}
	if ae.status == http.StatusRequestTimeout {
		// The rest of the body may still be on its way: nothing else can
		// be read from this connection.
		c.Header("Connection", "close")
	}
	if ae.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int((ae.retryAfter+time.Second-1)/time.Second)))
	}
	middleware.SetProblem(c, ae.code)
	writeProblem(c, ae)
}

func writeProblem(c *gin.Context, ae *apiError) {
	p := Problem{
		Type:   problemType(ae.code),
		Title:  http.StatusText(ae.status),
		Status: ae.status,
		Detail: ae.detail,
		Errors: ae.fields,
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen for these field types
		body = []byte(`{"title":"Internal Server Error","status":500}`)
	}
	c.Data(ae.status, "application/problem+json", append(body, '\n'))
	c.Abort()
}

// rejecter returns the function middleware use to refuse a request, so
// that their refusals are problems in the same format as the handlers'.
func rejecter(log *slog.Logger) middleware.Reject {
	return func(c *gin.Context, r middleware.Rejection) {
		writeError(c, log, &apiError{status: r.Status, code: r.Code, detail: r.Detail, retryAfter: r.RetryAfter})
	}
}

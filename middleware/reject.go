package middleware

import (
	"time"

	"github.com/gin-gonic/gin"
)

// Rejection is a request refused by a middleware before any handler ran.
type Rejection struct {
	Status int
	// Code is the problem code: the last part of the problem type URI and
	// the reason label of factstream_rejected_requests_total.
	Code       string
	Detail     string
	RetryAfter time.Duration // sent as Retry-After when positive
}

// Reject writes r as the response and aborts the handler chain. The
// handlers package supplies it (middleware cannot import handlers), so that
// middleware and handlers answer in one problem format.
type Reject func(c *gin.Context, r Rejection)

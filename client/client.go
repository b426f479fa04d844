// Package client is the Go client of a factstream service.
//
// It does for its users what the HTTP API leaves to each of them:
// Publish and PublishBatch send an Idempotency-Key and retry with it, so
// one call stores one fact however often the network fails in between;
// Subscribe resumes the live stream with Last-Event-ID, so it yields every
// fact once and in order across disconnects, server restarts and catch-up
// arrays. Every failure the service reports is an *Error carrying its
// problem document.
//
// The package depends on the standard library and github.com/google/uuid
// only: it does not pull in the server.
package client

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultAttempts        = 6
	DefaultBackoffBase     = 250 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultRequestTimeout  = 30 * time.Second
	DefaultIdleTimeout     = time.Minute
	DefaultMaxEventSize    = 4 << 20
	DefaultMaxResponseSize = 64 << 20
)

// Options tune a Client. The zero value of every field means its default.
type Options struct {
	// Token is sent as "Authorization: Bearer <token>": a publish token
	// (which also grants reading) or a subscribe token.
	Token string
	// HTTPClient sends the requests; nil means http.DefaultClient. Its
	// Timeout, if any, would also end streams: leave it zero and use
	// RequestTimeout and IdleTimeout instead.
	HTTPClient *http.Client
	// Retry bounds the retries of a call and the waits between them.
	Retry RetryPolicy
	// RequestTimeout bounds each attempt of a request other than the
	// stream, from sending it to reading the whole answer.
	RequestTimeout time.Duration
	// IdleTimeout is how long a stream may go without a byte (the server
	// sends a keepalive every 15 s by default) before Subscribe takes the
	// connection for dead and reconnects.
	IdleTimeout time.Duration
	// MaxEventSize bounds one stream event in bytes; the server sends at
	// most 256 KiB of facts per event.
	MaxEventSize int
	// MaxResponseSize bounds the body of any other answer in bytes.
	MaxResponseSize int64
	// OnRetry, when set, is told of every failed attempt that will be
	// retried (and every stream reconnection), with the wait before the
	// next one. It must not block.
	OnRetry func(err error, wait time.Duration)
}

// RetryPolicy bounds retries: a call makes at most Attempts tries, waiting
// Base, then twice as long each time (with jitter), never more than Max, and
// at least what the server asks for in Retry-After. A Retry-After beyond
// Max ends the call with the server's answer rather than waiting that
// long.
type RetryPolicy struct {
	// Attempts is the most tries a publish or read makes, the first one
	// included; 1 turns retries off. Subscribe reconnects without limit
	// until its context ends.
	Attempts int
	// Base is the first wait.
	Base time.Duration
	// Max is the longest wait.
	Max time.Duration
}

// Client talks to one factstream service. It is safe for concurrent use.
type Client struct {
	base string // scheme, host and path prefix, without a trailing slash
	hc   *http.Client
	o    Options
}

// New returns a client of the service at baseURL (for example
// "http://localhost:3000", or a URL with a path prefix behind a proxy).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http:// or https:// and a host", baseURL)
	}
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: strings.TrimSuffix(u.String(), "/"), hc: opts.HTTPClient, o: opts}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	defaults(&c.o)
	return c, nil
}

func defaults(o *Options) {
	set := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	if o.Retry.Attempts <= 0 {
		o.Retry.Attempts = DefaultAttempts
	}
	set(&o.Retry.Base, DefaultBackoffBase)
	set(&o.Retry.Max, DefaultBackoffMax)
	if o.Retry.Max < o.Retry.Base {
		o.Retry.Max = o.Retry.Base
	}
	set(&o.RequestTimeout, DefaultRequestTimeout)
	set(&o.IdleTimeout, DefaultIdleTimeout)
	if o.MaxEventSize <= 0 {
		o.MaxEventSize = DefaultMaxEventSize
	}
	if o.MaxResponseSize <= 0 {
		o.MaxResponseSize = DefaultMaxResponseSize
	}
}

// endpoint is the URL of path (which starts with "/" and is escaped
// already) under the base URL.
func (c *Client) endpoint(path string, query url.Values) string {
	if len(query) == 0 {
		return c.base + path
	}
	return c.base + path + "?" + query.Encode()
}

func (c *Client) authorize(h http.Header) {
	if c.o.Token != "" {
		h.Set("Authorization", "Bearer "+c.o.Token)
	}
}

func (c *Client) notify(err error, wait time.Duration) {
	if c.o.OnRetry != nil {
		c.o.OnRetry(err, wait)
	}
}

package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"
)

// maxProblemSize bounds the body read from an error answer: problem
// documents are small, and a proxy's error page is not worth more.
const maxProblemSize = 64 << 10

// request is one call to the API, sent again as a whole on a retry.
type request struct {
	method string
	path   string // escaped, starting with "/"
	query  url.Values
	body   []byte
	header http.Header
}

// permanentError is a failure that the same request would meet again (an
// answer that cannot be read as the API's), so it is not retried.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// call sends r until it succeeds, fails for good, runs out of attempts or
// ctx ends, and decodes a successful answer into out.
func (c *Client) call(ctx context.Context, r request, out any) error {
	op := r.method + " " + r.path
	for attempt := 1; ; attempt++ {
		err := c.attempt(ctx, r, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		wait, retry := c.retryWait(err, attempt)
		if !retry {
			if attempt > 1 {
				return fmt.Errorf("%s: %w (gave up after %d attempts)", op, err, attempt)
			}
			return fmt.Errorf("%s: %w", op, err)
		}
		c.notify(fmt.Errorf("%s: %w", op, err), wait)
		if werr := sleep(ctx, wait); werr != nil {
			return fmt.Errorf("%s: %w (last attempt: %w)", op, werr, err)
		}
	}
}

// attempt sends r once, within the request timeout, and reads the whole
// answer.
func (c *Client) attempt(ctx context.Context, r request, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.RequestTimeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.endpoint(r.path, r.query), body)
	if err != nil {
		return permanentError{err}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	c.authorize(req.Header)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemSize))
		return problemFrom(resp, data)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.o.MaxResponseSize+1))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if int64(len(data)) > c.o.MaxResponseSize {
		return permanentError{fmt.Errorf("the answer exceeds %d bytes (Options.MaxResponseSize)", c.o.MaxResponseSize)}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return permanentError{fmt.Errorf("decoding the answer: %w", err)}
	}
	return nil
}

// retryWait says whether a call whose attempt-th try failed with err
// tries again, and after how long.
func (c *Client) retryWait(err error, attempt int) (time.Duration, bool) {
	if attempt >= c.o.Retry.Attempts || isPermanent(err) {
		return 0, false
	}
	var asked time.Duration
	if e, ok := errors.AsType[*Error](err); ok {
		if !e.temporary() {
			return 0, false
		}
		asked = e.RetryAfter
	}
	if asked > c.o.Retry.Max {
		return 0, false // the caller decides whether to wait that long
	}
	return max(backoff(c.o.Retry, attempt), asked), true
}

// backoff is the wait after the n-th consecutive failure: Base doubled
// n-1 times, at most Max, of which a random half is taken off so that
// clients failing together do not come back together.
func backoff(p RetryPolicy, n int) time.Duration {
	d := p.Max
	if n < 32 && p.Base<<(n-1) > 0 && p.Base<<(n-1) < p.Max {
		d = p.Base << (n - 1)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

func isPermanent(err error) bool {
	_, ok := errors.AsType[permanentError](err)
	return ok
}

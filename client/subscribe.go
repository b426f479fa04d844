package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// Event is one thing the stream reports; exactly one field is set.
type Event struct {
	// Fact is the next fact, in seq order, each once.
	Fact *Fact
	// Truncated says that facts after the position were removed by
	// retention before they could be delivered; the stream goes on from
	// the oldest fact kept.
	Truncated *Truncated
	// Deleted says that a fact was deleted from the store (it may have
	// been yielded already).
	Deleted *Deleted
	// Reset says that the store was replaced: seqs start over, and the
	// facts that follow are the new store's.
	Reset *Reset
}

// Truncated is the data of the stream's "truncated" event.
type Truncated struct {
	// LastEventID is the position the stream resumed from.
	LastEventID uint64 `json:"last_event_id"`
	// FirstSeq is the seq of the oldest fact kept: the facts between
	// LastEventID and FirstSeq are gone.
	FirstSeq uint64 `json:"first_seq"`
}

// Deleted is the data of the stream's "deleted" event.
type Deleted struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

// Reset reports a replaced store.
type Reset struct {
	// LastSeq is the position in the old store, which means nothing in
	// the new one.
	LastSeq uint64
}

// errStopped ends a connection whose consumer stopped iterating.
var errStopped = errors.New("the consumer stopped")

// errIdle is why a connection that went quiet was closed.
var errIdle = errors.New("no byte from the stream within the idle timeout")

// Subscribe follows the live stream and yields every fact with a seq above
// after (0: every fact in the store), once and in seq order, then each
// new fact as it is published, until ctx ends or the loop stops.
//
// It reconnects by itself whenever the connection drops or the server
// restarts, resuming with Last-Event-ID after the last fact it yielded,
// after the server's advertised retry delay and then a growing backoff
// (at most RetryPolicy.Max). Each reconnection is reported to
// Options.OnRetry. An error is yielded only when reconnecting cannot help
// (a 4xx answer such as a wrong token, an answer that is no event stream,
// an event beyond MaxEventSize); the sequence ends after it. When ctx ends
// the sequence ends without an error.
func (c *Client) Subscribe(ctx context.Context, after uint64) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		s := &subscription{c: c, last: after, resume: true}
		for {
			progressed, err := s.connect(ctx, yield)
			if errors.Is(err, errStopped) || ctx.Err() != nil {
				return
			}
			if fatal(err) {
				yield(Event{}, err)
				return
			}
			wait := s.wait(progressed, err)
			c.notify(err, wait)
			if sleep(ctx, wait) != nil {
				return
			}
		}
	}
}

// subscription is the position of one Subscribe across its connections.
type subscription struct {
	c      *Client
	last   uint64        // the seq of the last fact yielded, or the stream's position
	resume bool          // send last as Last-Event-ID
	retry  time.Duration // the reconnection delay the server asked for; 0 until it does
	fails  int           // connections in a row that delivered no event
}

// connect opens one stream and yields its events until it ends. It
// reports whether the stream delivered any event.
func (s *subscription) connect(ctx context.Context, yield func(Event, error) bool) (bool, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.c.endpoint("/events", nil), nil)
	if err != nil {
		return false, permanentError{err}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.resume {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(s.last, 10))
	}
	s.c.authorize(req.Header)
	// A dead peer sends nothing, not even an error: every wait for the
	// next byte, the answer's head included, is bounded.
	idle := time.AfterFunc(s.c.o.IdleTimeout, func() { cancel(errIdle) })
	defer idle.Stop()
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return false, s.failure(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemSize))
		return false, fmt.Errorf("GET /events: %w", problemFrom(resp, data))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, permanentError{fmt.Errorf("GET /events: answered %q, not an event stream: is %s a factstream service?",
			resp.Header.Get("Content-Type"), s.c.base)}
	}
	r := newSSEReader(resp.Body, s.c.o.MaxEventSize, func() { idle.Reset(s.c.o.IdleTimeout) })
	// The time the consumer takes is not the server's silence.
	paused := func(ev Event, err error) bool {
		idle.Stop()
		defer idle.Reset(s.c.o.IdleTimeout)
		return yield(ev, err)
	}
	progressed, err := s.read(r, paused)
	if err != nil && !errors.Is(err, errStopped) {
		err = s.failure(ctx, err)
	}
	return progressed, err
}

// failure names the cause of a connection's end.
func (s *subscription) failure(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errIdle) {
		return fmt.Errorf("GET /events: %w (%v)", errIdle, s.c.o.IdleTimeout)
	}
	if errors.Is(err, io.EOF) {
		return errors.New("GET /events: the server ended the stream")
	}
	return fmt.Errorf("GET /events: %w", err)
}

// fatal reports whether reconnecting cannot help.
func fatal(err error) bool {
	if isPermanent(err) || errors.Is(err, ErrEventTooLarge) {
		return true
	}
	e, ok := errors.AsType[*Error](err)
	return ok && e.Status/100 == 4 && !e.temporary()
}

// wait is the delay before the next connection: the server's retry delay
// after a stream that delivered events, then doubling (with jitter) while
// connections fail, never more than RetryPolicy.Max, and at least what a
// Retry-After asked for (up to that same bound).
func (s *subscription) wait(progressed bool, err error) time.Duration {
	if progressed {
		s.fails = 0
	}
	s.fails++
	base := s.retry
	if base <= 0 {
		base = s.c.o.Retry.Base
	}
	limit := s.c.o.Retry.Max
	wait := min(base, limit)
	if s.fails > 1 {
		wait = backoff(RetryPolicy{Base: base, Max: limit}, s.fails)
	}
	if e, ok := errors.AsType[*Error](err); ok && e.RetryAfter > wait {
		wait = min(e.RetryAfter, limit)
	}
	return wait
}

package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"factstream/hub"
	"factstream/middleware"
	"factstream/sse"
	"factstream/store"
	"factstream/takeover"
)

// TruncatedEvent names the event that tells a resuming stream that facts
// after its Last-Event-ID were removed: its data is
// {"last_event_id":N,"first_seq":F}, and the catch-up from F follows.
const TruncatedEvent = "truncated"

// Subscriptions is what a stream needs from the hub.
type Subscriptions interface {
	// Subscribe registers a stream of client (middleware.ClientKey), so
	// that a bound on the streams of one client can hold.
	Subscribe(client string) (*hub.Subscriber, error)
	// CountsClients reports whether there is such a bound: the client's
	// key is worked out only then.
	CountsClients() bool
}

// Takeover is what a stream needs from the takeover writer, which writes
// the live events of plain HTTP/1.1 streams from one goroutine for all.
type Takeover interface {
	// Hijack takes the stream's connection, or returns nil when it cannot
	// be taken over (the stream then stays with its goroutine).
	Hijack(w http.ResponseWriter, r *http.Request) net.Conn
	// Attach hands a hijacked stream over; st.OnEnd reports its end.
	Attach(conn net.Conn, sub *hub.Subscriber, st takeover.Stream)
}

// FactReader is what streams and read endpoints need from the store.
type FactReader interface {
	Range(ctx context.Context, after, upTo uint64, limit int) ([]store.Fact, error)
	Stats(ctx context.Context) (store.Stats, error)
}

// StreamOptions tune GET /events.
type StreamOptions struct {
	Retry        time.Duration // reconnection delay advertised to clients
	Heartbeat    time.Duration // interval of keepalive comments
	WriteTimeout time.Duration // deadline of each write to a client
	SnapshotMax  int           // facts in the snapshot of a fresh connection
	// Takeover, when set, writes the live events of the streams it can
	// take over; nil leaves every stream with its goroutine.
	Takeover Takeover
}

// Why a stream ended, as logged.
const (
	endClient   = "client-closed"
	endSlow     = "slow-client"
	endShutdown = "shutdown"
	endWrite    = "write-failed"
	endStore    = "store-failed"
	endGap      = "out-of-sequence"
	endReset    = "store-reset"
)

func handleEvents(log *slog.Logger, subs Subscriptions, facts FactReader, o StreamOptions) gin.HandlerFunc {
	return func(c *gin.Context) {
		lastID, resume, err := lastEventID(c.Request)
		if err != nil {
			writeError(c, log, err)
			return
		}
		// Subscribe before reading the store: anything committed after the
		// read below is then certain to arrive through the queue.
		client := ""
		if subs.CountsClients() {
			client = middleware.ClientKey(c)
		}
		sub, err := subs.Subscribe(client)
		if err != nil {
			writeError(c, log, err)
			return
		}
		handedOver := false
		defer func() {
			if !handedOver {
				sub.Close()
			}
		}()
		ctx := c.Request.Context()
		st, err := facts.Stats(ctx)
		if err != nil {
			writeError(c, log, err)
			return
		}
		if resume && lastID > st.LastSeq {
			resume = false // the store was replaced: start afresh
		}
		h := c.Writer.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		// Unless a guard already said close (a chunked request: whatever
		// followed its body must never be served).
		if c.Request.ProtoMajor == 1 && h.Get("Connection") == "" {
			h.Set("Connection", "keep-alive")
		}
		c.Status(http.StatusOK)
		s := &stream{w: c.Writer, rc: http.NewResponseController(c.Writer), facts: facts, timeout: o.WriteTimeout}
		s.buf = sse.AppendRetry(s.buf[:0], o.Retry)
		var reason string
		if err = s.snapshot(ctx, st.LastSeq, resume, lastID, o.SnapshotMax); err != nil {
			reason, err = s.failure(sub, err)
		} else if handedOver = takeOver(c, log, sub, s, o); handedOver {
			return
		} else {
			reason, err = s.live(ctx, sub, o)
		}
		middleware.SetStreamEnd(c, s.sent, reason)
		switch reason {
		case endSlow:
			log.LogAttrs(ctx, slog.LevelWarn, "slow subscriber disconnected",
				slog.String("request_id", middleware.RequestIDOf(c)), slog.Uint64("last_seq", s.cur.Last))
		case endStore:
			log.LogAttrs(ctx, slog.LevelError, "stream ended by a store error",
				slog.String("request_id", middleware.RequestIDOf(c)), slog.String("error", err.Error()))
		}
	}
}

// takeOver hands a plain HTTP/1.1 stream, its snapshot written, to the
// takeover writer, which writes its events from then on: the request's
// goroutine, buffers and reader are released, which is most of what a
// stream costs. Streams it cannot take stay here.
func takeOver(c *gin.Context, log *slog.Logger, sub *hub.Subscriber, s *stream, o StreamOptions) bool {
	if o.Takeover == nil {
		return false
	}
	// gin refuses to hijack once a body was written; net/http itself
	// allows it (it flushes the chunk written so far), so ask it directly.
	w := http.ResponseWriter(c.Writer)
	if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
		w = u.Unwrap()
	}
	conn := o.Takeover.Hijack(w, c.Request)
	if conn == nil {
		return false
	}
	finish := middleware.DeferLog(c, log)
	requestID, sent := middleware.RequestIDOf(c), s.sent
	o.Takeover.Attach(conn, sub, takeover.Stream{
		Last: s.cur.Last, Heartbeat: o.Heartbeat, WriteTimeout: o.WriteTimeout,
		OnEnd: func(n int, why error) {
			reason := endReason(why)
			if reason == endSlow {
				log.LogAttrs(context.Background(), slog.LevelWarn, "slow subscriber disconnected",
					slog.String("request_id", requestID), slog.String("error", why.Error()))
			}
			finish(sent+n, reason)
		},
	})
	return true
}

func endReason(why error) string {
	switch {
	case errors.Is(why, takeover.ErrClientGone):
		return endClient
	case errors.Is(why, hub.ErrSlow), errors.Is(why, hub.ErrStalled):
		return endSlow
	case errors.Is(why, hub.ErrClosed):
		return endShutdown
	case errors.Is(why, hub.ErrReset):
		return endReset
	case errors.Is(why, takeover.ErrGap):
		return endGap
	default:
		return endWrite
	}
}

// stream writes one client's events. Only the request's goroutine uses it.
type stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	facts   FactReader
	timeout time.Duration
	buf     []byte
	data    []byte     // an array's data, encoded before its event
	cur     sse.Cursor // the last fact sent
	sent    int        // events written, the snapshot included
}

// live writes queued events and keepalives until the stream ends.
func (s *stream) live(ctx context.Context, sub *hub.Subscriber, o StreamOptions) (string, error) {
	heartbeat := time.NewTicker(o.Heartbeat)
	defer heartbeat.Stop()
	var events []hub.Event
	for {
		select {
		case <-ctx.Done():
			return endClient, nil
		case <-sub.Done():
			switch {
			case errors.Is(sub.Err(), hub.ErrSlow):
				return endSlow, nil
			case errors.Is(sub.Err(), hub.ErrReset):
				// Best effort: the stream ends either way.
				s.flush(append(s.buf[:0], sse.ResetFrame...))
				return endReset, nil
			}
			return endShutdown, nil
		case <-heartbeat.C:
			if err := s.flush(append(s.buf[:0], sse.Keepalive...)); err != nil {
				return s.failure(sub, err)
			}
		case <-sub.Ready():
			events = sub.Take(events[:0])
			n, err := s.deliver(ctx, events)
			sub.Delivered(n)
			clear(events) // drop references to frames already written
			if err != nil {
				return s.failure(sub, err)
			}
		}
	}
}

// failure says why a live stream ended with err. A write that timed out is
// a client that took no data for the write timeout: a slow disconnect, as
// on a taken-over stream.
func (s *stream) failure(sub *hub.Subscriber, err error) (string, error) {
	switch {
	case errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrClosed):
		return endStore, err
	case errors.Is(err, context.Canceled):
		return endClient, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		sub.Stalled()
		return endSlow, err
	}
	return endWrite, err
}

// snapshot writes the retry line and the snapshot event(s): the newest
// facts for a fresh client, or every fact kept after lastID for a resume.
func (s *stream) snapshot(ctx context.Context, head uint64, resume bool, lastID uint64, max int) error {
	if resume {
		s.cur.Cover(lastID)
		if lastID == head {
			return s.array(nil, head) // nothing missed: confirm the position
		}
		return s.catchUp(ctx, head, false)
	}
	if head == 0 {
		// An empty store: Range with upTo 0 would mean "no bound" and could
		// return facts committed since head was read, without an id.
		return s.array(nil, 0)
	}
	if max == 0 {
		return s.array(nil, head) // no snapshot: only the position
	}
	if head > uint64(max) {
		s.cur.Cover(head - uint64(max))
	}
	return s.sendRange(ctx, nil, false, head)
}

// catchUp sends the facts kept after the cursor up to upTo from the store,
// as array events (see sendRange), the last of them with upTo as its id.
// Facts in that range may be gone, deleted or removed by retention: their
// seqs are holes, skipped. When the facts right after the cursor were
// removed (the oldest fact kept is past them), a truncated event says so
// first. A resume always gets an array, if empty, to confirm its position;
// a gap in live events, which the event after it ends, does not.
func (s *stream) catchUp(ctx context.Context, upTo uint64, gap bool) error {
	page, err := s.facts.Range(ctx, s.cur.Last, upTo, firstPage)
	if err != nil {
		return err
	}
	if len(page) == 0 || page[0].Seq > s.cur.Last+1 {
		if err := s.truncated(ctx, page, upTo); err != nil {
			return err
		}
	}
	if len(page) == 0 && gap {
		s.cur.Cover(upTo)
		return s.flushPending()
	}
	return s.sendRange(ctx, page, len(page) < firstPage, upTo)
}

// truncated adds a truncated event to s.buf when facts, the first page of
// a catch-up, does not start right after the cursor because the facts
// there were removed: the oldest fact kept is past the next seq, or none
// is kept. Holes that deletions left among kept facts are no truncation.
// Its first_seq is the first of facts, or upTo+1 when nothing up to upTo
// is kept. The stats are read after the page, never before: retention
// moves first_seq only forward, so a first_seq the page already shows
// removed is never missed.
func (s *stream) truncated(ctx context.Context, facts []store.Fact, upTo uint64) error {
	st, err := s.facts.Stats(ctx)
	if err != nil {
		return err
	}
	if st.FirstSeq != 0 && st.FirstSeq <= s.cur.Last+1 {
		return nil
	}
	firstSeq := upTo + 1
	if len(facts) > 0 {
		firstSeq = facts[0].Seq
	}
	last := s.cur.Last
	s.buf = sse.AppendEvent(s.buf, TruncatedEvent, 0, func(dst []byte) []byte {
		dst = append(dst, `{"last_event_id":`...)
		dst = strconv.AppendUint(dst, last, 10)
		dst = append(dst, `,"first_seq":`...)
		dst = strconv.AppendUint(dst, firstSeq, 10)
		return append(dst, '}')
	})
	s.sent++
	return nil
}

// array writes facts as one JSON array event carrying id (none when 0),
// after whatever s.buf already holds.
func (s *stream) array(facts []store.Fact, id uint64) error {
	s.buf = sse.AppendEvent(s.buf, "", id, func(dst []byte) []byte { return store.AppendJSONArray(dst, facts) })
	s.cur.Cover(id)
	s.sent++
	return s.flush(s.buf)
}

// deliver writes the queued events that follow the cursor in one write.
// Events the snapshot already covered are skipped; a gap, which only a
// store that reports appends late could cause, is filled from the store
// first.
func (s *stream) deliver(ctx context.Context, events []hub.Event) (int, error) {
	s.buf = s.buf[:0]
	n := 0
	for _, ev := range events {
		step := s.cur.Next(ev.Seq)
		if step == sse.Gap {
			if err := s.flushPending(); err != nil {
				return n, err
			}
			if err := s.catchUp(ctx, ev.Seq-1, true); err != nil {
				return n, err
			}
			s.buf = s.buf[:0]
			step = s.cur.Next(ev.Seq)
		}
		if step != sse.Deliver {
			continue
		}
		s.buf = append(s.buf, ev.Frame...)
		n++
	}
	if err := s.flushPending(); err != nil {
		return n, err
	}
	s.sent += n
	return n, nil
}

func (s *stream) flushPending() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.flush(s.buf)
	s.buf = s.buf[:0]
	return err
}

// flush writes b and flushes it to the client under a per-write deadline,
// so a stuck client costs one timeout, never a stuck goroutine. The
// deadline is cleared once the write is through: on HTTP/2 it is a timer
// that resets the stream when it fires, even with no write pending, so a
// deadline left set would cut every stream idle for longer than timeout.
func (s *stream) flush(b []byte) error {
	deadline := s.timeout > 0
	if deadline {
		if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
			if !errors.Is(err, http.ErrNotSupported) {
				return err
			}
			deadline = false
		}
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	s.buf = s.buf[:0]
	if err := s.rc.Flush(); err != nil {
		return err
	}
	if deadline {
		return s.rc.SetWriteDeadline(time.Time{})
	}
	return nil
}

// Package hub keeps the registry of live subscribers and fans events out to
// them. Publishing never blocks: each subscriber has a bounded queue, and a
// subscriber whose queue is full is dropped, to catch up later from the
// store, rather than slowing anyone else down.
package hub

import (
	"errors"
	"sync"
	"sync/atomic"
)

// Event is one encoded event. Frame holds its complete wire bytes; it is
// shared by every subscriber and must not be modified.
type Event struct {
	Seq   uint64
	Frame []byte
}

// Errors that end or refuse a subscription.
var (
	// ErrClosed means the hub is shutting down.
	ErrClosed = errors.New("hub closed")
	// ErrFull means the hub already serves its maximum number of subscribers.
	ErrFull = errors.New("too many subscribers")
	// ErrSlow means the subscriber's queue overflowed.
	ErrSlow = errors.New("subscriber too slow")
	// ErrReset means the facts the stream was built on are gone (the
	// store lost its data): its client must start over.
	ErrReset = errors.New("the store's facts were replaced")
)

// Options configure a Hub.
type Options struct {
	// Buffer is how many undelivered events a subscriber may have waiting
	// when more arrive; one publish may add more on top.
	Buffer int
	// MaxSubscribers bounds concurrent subscribers; 0 means no bound.
	MaxSubscribers int
}

// Stats are the hub's counters.
type Stats struct {
	Subscribers int
	// MaxSubscribers is Options.MaxSubscribers: 0 means no bound.
	MaxSubscribers  int
	Delivered       uint64
	SlowDisconnects uint64
}

// Hub fans events out to subscribers. It is safe for concurrent use.
type Hub struct {
	opts Options

	mu     sync.Mutex
	subs   map[*Subscriber]struct{}
	closed bool
	w      *writer // writes taken-over streams; started by the first Attach

	count     atomic.Int64
	delivered atomic.Uint64
	slow      atomic.Uint64
}

// New returns a hub with no subscribers.
func New(opts Options) *Hub {
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	return &Hub{opts: opts, subs: make(map[*Subscriber]struct{})}
}

// Subscribe registers a subscriber. Events published after Subscribe
// returns are queued for it until Close.
func (h *Hub) Subscribe() (*Subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.opts.MaxSubscribers > 0 && len(h.subs) >= h.opts.MaxSubscribers {
		return nil, ErrFull
	}
	s := &Subscriber{hub: h, ready: make(chan struct{}, 1), done: make(chan struct{})}
	h.subs[s] = struct{}{}
	h.count.Store(int64(len(h.subs)))
	return s, nil
}

// Publish queues events, in order, for every subscriber. It never blocks on
// a subscriber; one whose queue would overflow is dropped with ErrSlow.
func (h *Hub) Publish(events []Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		woke, err := s.push(events, h.opts.Buffer)
		switch err {
		case nil:
		case ErrSlow:
			delete(h.subs, s)
			h.slow.Add(1)
		default:
			delete(h.subs, s)
		}
		if s.direct != nil && (woke || err != nil) {
			h.w.markDirty(s)
		}
	}
	h.count.Store(int64(len(h.subs)))
}

// Close ends every subscription with ErrClosed and refuses new ones, so
// that streams return and a server can shut down.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for s := range h.subs {
		s.end(ErrClosed)
		delete(h.subs, s)
	}
	h.count.Store(0)
	w := h.w
	h.w = nil
	h.mu.Unlock()
	if w != nil {
		w.stop() // ends the taken-over streams, outside the lock
	}
}

// EndAll ends every subscription with err and goes on taking new ones.
// Unlike Close, the hub stays open: its clients reconnect at once.
func (h *Hub) EndAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.end(err)
		delete(h.subs, s)
		if s.direct != nil {
			h.w.markDirty(s) // the writer ends the connection
		}
	}
	h.count.Store(0)
}

// Subscribers returns the number of current subscribers.
func (h *Hub) Subscribers() int {
	return int(h.count.Load())
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{
		Subscribers:     h.Subscribers(),
		MaxSubscribers:  h.opts.MaxSubscribers,
		Delivered:       h.delivered.Load(),
		SlowDisconnects: h.slow.Load(),
	}
}

// remove unregisters s and reports whether it was still registered.
func (h *Hub) remove(s *Subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; !ok {
		return false
	}
	delete(h.subs, s)
	h.count.Store(int64(len(h.subs)))
	return true
}

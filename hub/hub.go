// Package hub keeps the registry of live subscribers and fans events out to
// them. Publishing never blocks: each subscriber has a bounded queue, and a
// subscriber whose queue is full is dropped, to catch up later from the
// store, rather than slowing anyone else down.
//
// A subscriber is read by its own goroutine (Ready, then Take), or by a
// writer that serves many of them from one goroutine and asked to be woken
// instead (Handoff): the hub knows nothing of how its events reach a
// client.
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
	// ErrClientFull means the client already has its maximum number of
	// subscriptions (Options.MaxPerClient).
	ErrClientFull = errors.New("too many subscribers from this client")
	// ErrSlow means the subscriber's queue overflowed.
	ErrSlow = errors.New("subscriber too slow")
	// ErrReset means the facts the stream was built on are gone (the
	// store lost its data): its client must start over.
	ErrReset = errors.New("the store's facts were replaced")
	// ErrStalled means the client took no data for the write timeout: it
	// stopped reading, or vanished without closing.
	ErrStalled = errors.New("client stalled")
)

// Options configure a Hub.
type Options struct {
	// Buffer is how many undelivered events a subscriber may have waiting
	// when more arrive; one publish may add more on top.
	Buffer int
	// MaxSubscribers bounds concurrent subscribers; 0 means no bound.
	MaxSubscribers int
	// MaxPerClient bounds the concurrent subscribers of one client (as
	// named to Subscribe); 0 means no bound.
	MaxPerClient int
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

	mu        sync.Mutex
	subs      map[*Subscriber]struct{}
	perClient map[string]*clientCount // the named clients' subscribers, while MaxPerClient > 0
	closed    bool

	count     atomic.Int64
	delivered atomic.Uint64
	slow      atomic.Uint64
}

// New returns a hub with no subscribers.
func New(opts Options) *Hub {
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	return &Hub{opts: opts, subs: make(map[*Subscriber]struct{}), perClient: make(map[string]*clientCount)}
}

// clientCount is how many subscribers a named client has. Its subscribers
// point to it: one pointer per subscriber, not a copy of the name each.
type clientCount struct {
	key string
	n   int
}

// Subscribe registers a subscriber for client (an address, say; "" is no
// client in particular and is not bounded per client). Events published
// after Subscribe returns are queued for it until Close.
func (h *Hub) Subscribe(client string) (*Subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.opts.MaxSubscribers > 0 && len(h.subs) >= h.opts.MaxSubscribers {
		return nil, ErrFull
	}
	var count *clientCount
	if client != "" && h.opts.MaxPerClient > 0 {
		count = h.perClient[client]
		if count == nil {
			count = &clientCount{key: client}
			h.perClient[client] = count
		}
		if count.n >= h.opts.MaxPerClient {
			return nil, ErrClientFull
		}
		count.n++
	}
	s := &Subscriber{hub: h, client: count, ready: make(chan struct{}, 1), done: make(chan struct{})}
	h.subs[s] = struct{}{}
	h.count.Store(int64(len(h.subs)))
	return s, nil
}

// CountsClients reports whether Subscribe bounds the subscribers of each
// client (Options.MaxPerClient). If not, a caller need not name the
// client: working its key out of a request allocates.
func (h *Hub) CountsClients() bool { return h.opts.MaxPerClient > 0 }

// unregister removes s from the registry and from its client's count;
// the caller holds h.mu and updates h.count.
func (h *Hub) unregister(s *Subscriber) {
	delete(h.subs, s)
	if c := s.client; c != nil {
		c.n--
		if c.n == 0 {
			delete(h.perClient, c.key) // so the map follows the clients connected now
		}
	}
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
		switch s.push(events, h.opts.Buffer) {
		case nil:
		case ErrSlow:
			h.unregister(s)
			h.slow.Add(1)
		default:
			h.unregister(s)
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
		h.unregister(s)
	}
	h.count.Store(0)
	h.mu.Unlock()
}

// EndAll ends every subscription with err and goes on taking new ones.
// Unlike Close, the hub stays open: its clients reconnect at once.
func (h *Hub) EndAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.end(err)
		h.unregister(s)
	}
	h.count.Store(0)
}

// Handoff moves sub's wake-ups from its Ready channel to wake, for a writer
// that serves many subscribers from one goroutine: wake is woken when
// events arrive on an empty queue, and once when the subscription ends,
// whoever ends it. It may be woken with the hub's lock held, so it must
// only record and signal, never block or call back into the hub. Handoff
// fails, with the reason, if the subscription has ended already.
func (h *Hub) Handoff(sub *Subscriber, wake Waker) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if _, ok := h.subs[sub]; !ok {
		// Ended while its snapshot was being written.
		if err := sub.Err(); err != nil {
			return err
		}
		return ErrSlow
	}
	// Under the hub's lock: whatever ends sub from here on (a publish, an
	// EndAll, a Close) takes the lock too, and so finds wake set.
	sub.mu.Lock()
	sub.wake = wake
	sub.mu.Unlock()
	return nil
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
	h.unregister(s)
	h.count.Store(int64(len(h.subs)))
	return true
}

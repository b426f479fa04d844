package hub

import "sync"

// Subscriber is one registered receiver of events. Its queue grows with
// what is waiting, up to the hub's Buffer, instead of being preallocated.
//
// An idle stream costs little more than its Subscriber, so its fields are
// kept to 96 bytes (a size class of Go's allocator): the client's count is
// shared by all its subscribers, and done doubles as the closed flag.
type Subscriber struct {
	hub    *Hub
	client *clientCount  // counted against Options.MaxPerClient, or nil
	ready  chan struct{} // holds a token while events wait
	done   chan struct{} // closed, under mu, when the subscription ends

	mu    sync.Mutex
	queue []Event
	err   error
	// wake, once Handoff set it, is woken instead of signalling ready.
	wake Waker
}

// Waker is what a writer serving many subscribers from one goroutine is
// woken through (see Hub.Handoff). A pointer to the writer's own state for
// the stream makes one without allocating, where a closure per stream
// would cost an object for as long as the stream lives.
type Waker interface {
	Wake()
}

// Ready returns a channel that receives when events are waiting.
func (s *Subscriber) Ready() <-chan struct{} { return s.ready }

// Done returns a channel closed when the hub ends the subscription; Err
// then says why.
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended (ErrSlow, ErrStalled, ErrClosed,
// ErrReset), or nil while it is active.
func (s *Subscriber) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Take appends every waiting event to dst, in order, and empties the queue.
func (s *Subscriber) Take(dst []Event) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst = append(dst, s.queue...)
	clear(s.queue)
	s.queue = s.queue[:0]
	return dst
}

// Delivered records that n events reached the client.
func (s *Subscriber) Delivered(n int) {
	s.hub.delivered.Add(uint64(n))
}

// Close unregisters the subscriber. It is safe to call more than once.
func (s *Subscriber) Close() {
	s.hub.remove(s)
	s.end(nil)
}

// Stalled ends the subscription of a client that took no data for the
// write timeout. It counts, like a queue overflow, as a slow disconnect;
// it does nothing if the subscription has already ended.
func (s *Subscriber) Stalled() {
	if s.hub.remove(s) {
		s.hub.slow.Add(1)
	}
	s.end(ErrStalled)
}

// push queues events; an error means the subscriber is no longer active
// (ErrSlow when this push overflowed its queue). The hub holds its lock, so
// pushes reach a subscriber in publish order.
func (s *Subscriber) push(events []Event, limit int) error {
	s.mu.Lock()
	if s.ended() {
		s.mu.Unlock()
		return ErrClosed
	}
	// Slow means this many events were already waiting: a fast client with
	// an empty queue takes a batch of any size (a 1,000-fact POST, a group
	// commit) without being mistaken for a slow one.
	if len(s.queue) >= limit {
		s.mu.Unlock()
		s.end(ErrSlow)
		return ErrSlow
	}
	woke := len(s.queue) == 0
	s.queue = append(s.queue, events...)
	wake := s.wake
	s.mu.Unlock()
	if wake != nil {
		// A writer of many streams is told only when the queue was empty:
		// otherwise it has been told already and not yet taken the queue.
		if woke {
			wake.Wake()
		}
		return nil
	}
	select {
	case s.ready <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// end closes the subscription once, recording why.
func (s *Subscriber) end(err error) {
	s.mu.Lock()
	if s.ended() {
		s.mu.Unlock()
		return
	}
	s.err = err
	s.queue = nil
	close(s.done)
	wake := s.wake
	s.mu.Unlock()
	if wake != nil {
		wake.Wake()
	}
}

// ended reports whether the subscription has ended. The caller holds s.mu,
// under which done is closed.
func (s *Subscriber) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

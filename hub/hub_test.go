package hub

import (
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
)

func events(from, n int) []Event {
	out := make([]Event, n)
	for i := range out {
		seq := uint64(from + i)
		out[i] = Event{Seq: seq, Frame: []byte("id: " + strconv.FormatUint(seq, 10) + "\n\n")}
	}
	return out
}

func mustSubscribe(tb testing.TB, h *Hub) *Subscriber {
	tb.Helper()
	s, err := h.Subscribe("")
	if err != nil {
		tb.Fatalf("subscribe: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

func TestPublishReachesEverySubscriberInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Options{Buffer: 100})
		subs := []*Subscriber{mustSubscribe(t, h), mustSubscribe(t, h)}
		got := make([][]uint64, len(subs))
		done := make(chan struct{})
		for i, s := range subs {
			go func() {
				defer func() { done <- struct{}{} }()
				for len(got[i]) < 6 {
					<-s.Ready()
					for _, ev := range s.Take(nil) {
						got[i] = append(got[i], ev.Seq)
					}
				}
			}()
		}
		h.Publish(events(1, 2))
		synctest.Wait()
		h.Publish(events(3, 4))
		<-done
		<-done
		for i := range got {
			for j, seq := range got[i] {
				if seq != uint64(j+1) {
					t.Fatalf("subscriber %d got %v, want 1..6 in order", i, got[i])
				}
			}
		}
		if st := h.Stats(); st.Subscribers != 2 || st.SlowDisconnects != 0 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

func TestFullQueueDropsOnlyThatSubscriber(t *testing.T) {
	h := New(Options{Buffer: 5})
	slow, fast := mustSubscribe(t, h), mustSubscribe(t, h)
	h.Publish(events(1, 6)) // more than Buffer, into empty queues: taken
	fast.Take(nil)
	select {
	case <-slow.Done():
		t.Fatal("a subscriber with an empty queue was dropped for one large publish")
	default:
	}
	h.Publish(events(7, 3)) // slow has 6 waiting, at least Buffer: dropped
	select {
	case <-slow.Done():
	default:
		t.Fatal("the slow subscriber was not dropped")
	}
	if !errors.Is(slow.Err(), ErrSlow) {
		t.Fatalf("slow.Err() = %v, want ErrSlow", slow.Err())
	}
	select {
	case <-fast.Done():
		t.Fatal("the fast subscriber was dropped too")
	default:
	}
	if got := fast.Take(nil); len(got) != 3 || got[0].Seq != 7 {
		t.Fatalf("fast subscriber got %v, want 7..9", got)
	}
	if st := h.Stats(); st.Subscribers != 1 || st.SlowDisconnects != 1 {
		t.Fatalf("stats = %+v, want 1 subscriber and 1 slow disconnect", st)
	}
}

func TestCloseEndsSubscriptionsAndRefusesNewOnes(t *testing.T) {
	h := New(Options{})
	s := mustSubscribe(t, h)
	h.Close()
	<-s.Done()
	if !errors.Is(s.Err(), ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", s.Err())
	}
	if _, err := h.Subscribe(""); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: %v, want ErrClosed", err)
	}
	h.Publish(events(1, 1)) // must not panic or block
}

func TestMaxSubscribersAndFreedSlots(t *testing.T) {
	h := New(Options{MaxSubscribers: 2})
	a := mustSubscribe(t, h)
	mustSubscribe(t, h)
	if _, err := h.Subscribe(""); !errors.Is(err, ErrFull) {
		t.Fatalf("third subscribe: %v, want ErrFull", err)
	}
	a.Close()
	a.Close() // twice is fine
	if got := h.Subscribers(); got != 1 {
		t.Fatalf("subscribers = %d after a close, want 1", got)
	}
	mustSubscribe(t, h)
}

// A client's slot is free again however its subscription ends, and one
// client at its bound does not hold back another or an unnamed one.
func TestMaxPerClientIsFreedWhateverEndsTheSubscription(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(h *Hub, s *Subscriber)
	}{
		{"Close", func(_ *Hub, s *Subscriber) { s.Close() }},
		{"Stalled", func(_ *Hub, s *Subscriber) { s.Stalled() }},
		{"QueueOverflow", func(h *Hub, _ *Subscriber) { h.Publish(events(1, 3)); h.Publish(events(4, 1)) }},
		{"EndAll", func(h *Hub, _ *Subscriber) { h.EndAll(ErrReset) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Options{Buffer: 2, MaxPerClient: 2})
			a, err := h.Subscribe("192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			b, err := h.Subscribe("192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Subscribe("192.0.2.1"); !errors.Is(err, ErrClientFull) {
				t.Fatalf("third subscribe of one client: %v, want ErrClientFull", err)
			}
			other, err := h.Subscribe("192.0.2.2")
			if err != nil {
				t.Fatalf("another client: %v", err)
			}
			if _, err := h.Subscribe(""); err != nil {
				t.Fatalf("an unnamed client: %v", err)
			}
			other.Close()
			tc.end(h, a)
			if tc.name == "Close" || tc.name == "Stalled" {
				tc.end(h, b) // the others end every subscription of the client
			}
			for i := range 2 {
				if _, err := h.Subscribe("192.0.2.1"); err != nil {
					t.Fatalf("subscribe %d after the client's subscriptions ended: %v", i+1, err)
				}
			}
			if _, err := h.Subscribe("192.0.2.1"); !errors.Is(err, ErrClientFull) {
				t.Fatalf("the bound no longer holds: %v", err)
			}
		})
	}
}

func TestStalledCountsOnceAsSlowDisconnect(t *testing.T) {
	h := New(Options{Buffer: 5})
	stalled, _ := h.Subscribe("")
	closed, _ := h.Subscribe("")
	closed.Close()
	closed.Stalled() // already gone: not a slow disconnect
	stalled.Stalled()
	stalled.Stalled()
	stalled.Close()
	if err := stalled.Err(); !errors.Is(err, ErrStalled) {
		t.Fatalf("Err() = %v, want ErrStalled", err)
	}
	if st := h.Stats(); st.SlowDisconnects != 1 || st.Subscribers != 0 {
		t.Fatalf("stats %+v, want one slow disconnect and no subscribers", st)
	}
}

func TestEndAllEndsEverySubscriptionAndTakesNewOnes(t *testing.T) {
	h := New(Options{Buffer: 100})
	defer h.Close()
	old := []*Subscriber{mustSubscribe(t, h), mustSubscribe(t, h)}
	h.Publish(events(1, 3))
	h.EndAll(ErrReset)
	for i, s := range old {
		select {
		case <-s.Done():
		default:
			t.Fatalf("subscriber %d still open after EndAll", i)
		}
		if !errors.Is(s.Err(), ErrReset) {
			t.Fatalf("subscriber %d ended with %v, want ErrReset", i, s.Err())
		}
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("Subscribers() = %d after EndAll, want 0", n)
	}
	fresh := mustSubscribe(t, h)
	h.Publish(events(1, 2))
	if got := fresh.Take(nil); len(got) != 2 || got[0].Seq != 1 {
		t.Fatalf("a subscriber after EndAll got %d events, want seqs 1 and 2", len(got))
	}
	if got := old[0].Take(nil); len(got) != 0 {
		t.Fatalf("an ended subscriber still got %d events", len(got))
	}
}

// A writer that serves many streams from one goroutine is woken instead of
// each subscriber's Ready: when events arrive on an empty queue, and once
// when the subscription ends, whoever ends it.
func TestHandoffWakesTheWriterInsteadOfReady(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(h *Hub, s *Subscriber)
		want error
	}{
		{"Overflow", func(h *Hub, s *Subscriber) { h.Publish(events(3, 1)) }, ErrSlow},
		{"EndAll", func(h *Hub, s *Subscriber) { h.EndAll(ErrReset) }, ErrReset},
		{"Close", func(h *Hub, s *Subscriber) { h.Close() }, ErrClosed},
		{"Stalled", func(h *Hub, s *Subscriber) { s.Stalled() }, ErrStalled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Options{Buffer: 2})
			defer h.Close()
			s := mustSubscribe(t, h)
			var wakes int // the hub calls wake synchronously
			if err := h.Handoff(s, wakeFunc(func() { wakes++ })); err != nil {
				t.Fatalf("handoff: %v", err)
			}
			h.Publish(events(1, 1))
			h.Publish(events(2, 1)) // the queue was not empty: no second wake
			if wakes != 1 {
				t.Fatalf("%d wake-ups for two publishes into a queue nobody took, want 1", wakes)
			}
			select {
			case <-s.Ready():
				t.Fatal("Ready received after Handoff")
			default:
			}
			tc.end(h, s)
			if wakes != 2 || !errors.Is(s.Err(), tc.want) {
				t.Fatalf("after the end: %d wake-ups and Err %v, want 2 and %v", wakes, s.Err(), tc.want)
			}
		})
	}
}

// wakeFunc adapts a function to Waker.
type wakeFunc func()

func (f wakeFunc) Wake() { f() }

func TestHandoffRefusesAnEndedSubscription(t *testing.T) {
	h := New(Options{})
	ended := mustSubscribe(t, h)
	h.EndAll(ErrReset)
	if err := h.Handoff(ended, wakeFunc(func() {})); !errors.Is(err, ErrReset) {
		t.Fatalf("handoff of a reset subscription: %v, want ErrReset", err)
	}
	live := mustSubscribe(t, h)
	h.Close()
	if err := h.Handoff(live, wakeFunc(func() {})); !errors.Is(err, ErrClosed) {
		t.Fatalf("handoff after Close: %v, want ErrClosed", err)
	}
}

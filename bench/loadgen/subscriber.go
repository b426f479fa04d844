//go:build linux

package main

import (
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"
)

// fleet is what every subscriber of a run shares: the counters the main
// goroutine watches for progress, and the delivery latency histogram.
type fleet struct {
	run        int64        // this run's number, in every publisher id
	facts      int64        // fact numbers 0..facts-1 may be published
	snapshots  atomic.Int64 // subscribers that received their snapshot
	failed     atomic.Int64 // subscribers that failed before their snapshot
	ended      atomic.Int64 // streams that ended after their snapshot
	deliveries atomic.Int64 // fact events received, duplicates included
	lastRecv   atomic.Int64 // unix nanos of the latest fact event
	latency    histogram
}

// subscriber is the state of one SSE connection: its parser and which
// facts it has seen. Only the goroutine reading its connection touches it
// until the readers are closed.
type subscriber struct {
	fleet  *fleet
	src    netip.Addr // local address to connect from
	parser *responseParser
	seen   []uint64 // one bit per fact number
	now    int64    // unix nanos of the read being parsed

	snapshot   bool
	lastSeq    uint64
	received   int64 // distinct facts
	duplicates int64
	unknown    int64 // facts whose info this run did not write
	gaps       int64 // events whose id did not follow the previous one
	pending    int64 // fact events not yet added to fleet.deliveries
	err        error // why the stream ended early, if it did
}

func newSubscriber(f *fleet, src netip.Addr) *subscriber {
	s := &subscriber{fleet: f, src: src, seen: make([]uint64, (f.facts+63)/64)}
	s.parser = newResponseParser(s.onEvent)
	return s
}

// feed parses bytes read at now (unix nanos). It reports whether the
// snapshot arrived with them.
func (s *subscriber) feed(b []byte, now int64) (gotSnapshot bool, err error) {
	had := s.snapshot
	s.now = now
	err = s.parser.Feed(b)
	if s.pending > 0 {
		s.fleet.deliveries.Add(s.pending)
		storeMax(&s.fleet.lastRecv, now)
		s.pending = 0
	}
	if !had && s.snapshot {
		s.fleet.snapshots.Add(1)
		return true, err
	}
	return false, err
}

// end records why the connection ended, before or after the snapshot.
func (s *subscriber) end(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	if s.snapshot {
		s.fleet.ended.Add(1)
	} else {
		s.fleet.failed.Add(1)
	}
}

func (s *subscriber) onEvent(ev *event) {
	seq, hasSeq := atoi(ev.ID)
	if !s.snapshot {
		// The first event is the snapshot: an array of the facts so far.
		s.snapshot = true
		if hasSeq {
			s.lastSeq = uint64(seq)
		}
		for info, rest, ok := nextInfo(ev.Data); ok; info, rest, ok = nextInfo(rest) {
			s.mark(info, false)
		}
		return
	}
	if !hasSeq || uint64(seq) != s.lastSeq+1 {
		s.gaps++
	}
	s.lastSeq = uint64(seq)
	s.pending++
	info, _, ok := nextInfo(ev.Data)
	if !ok {
		s.unknown++
		return
	}
	s.mark(info, true)
}

// mark records fact info as seen and, for a live event, its latency.
func (s *subscriber) mark(info []byte, live bool) {
	f, err := parseInfo(info)
	if err != nil || int64(f.Pub/pubsPerRun) != s.fleet.run || f.N >= s.fleet.facts {
		s.unknown++
		return
	}
	w, bit := f.N/64, uint64(1)<<(f.N%64)
	if s.seen[w]&bit != 0 {
		s.duplicates++
		return
	}
	s.seen[w] |= bit
	s.received++
	if live {
		s.fleet.latency.Record(time.Duration(s.now - f.SentNanos))
	}
}

// missing counts the acknowledged facts this subscriber never received,
// and the facts it received that were never acknowledged.
func (s *subscriber) missing(acked []uint64) (missing, unacked int64) {
	for i, a := range acked {
		var seen uint64
		if i < len(s.seen) {
			seen = s.seen[i]
		}
		missing += int64(bits.OnesCount64(a &^ seen))
		unacked += int64(bits.OnesCount64(seen &^ a))
	}
	return missing, unacked
}

// storeMax raises v to x if x is larger.
func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// sourceAddrs spreads n connections over consecutive loopback addresses
// from first, per connections each, so that no local address runs out of
// ephemeral ports.
func sourceAddrs(first netip.Addr, per, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	a := first
	for i := range out {
		if i > 0 && i%per == 0 {
			a = a.Next()
		}
		out[i] = a
	}
	return out
}

// subscribeRequest is the request every subscriber sends.
func subscribeRequest(host string) []byte {
	return []byte("GET /events HTTP/1.1\r\nHost: " + host +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n")
}

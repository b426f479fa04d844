// Package fanout is the seam between the store and the hub: it turns what
// the store commits into the events the hub hands to every stream.
//
// It sits beside the hub, not in it, nor in the store or the handlers:
// the hub stays a registry of subscribers that knows nothing of facts, the
// store knows nothing of streams, and the handlers, which serve one request
// each, do not own what every stream receives. The dependencies point
// inward (fanout imports store, sse and hub; none of them imports fanout),
// and app wires it: store.Options{OnAppend: p.OnAppend, OnReset: p.OnReset,
// OnDelete: p.OnDelete}.
package fanout

import (
	"encoding/json"
	"log/slog"

	"factstream/hub"
	"factstream/sse"
	"factstream/store"
)

// Hub is what the fan-out needs from the hub.
type Hub interface {
	Subscribers() int
	Publish(events []hub.Event)
	EndAll(err error)
}

// Publisher publishes what the store commits to the hub's subscribers.
type Publisher struct {
	hub Hub
	log *slog.Logger
}

// New returns a publisher to h; log gets a warning when the store loses
// its facts.
func New(h Hub, log *slog.Logger) *Publisher {
	return &Publisher{hub: h, log: log}
}

// OnAppend is the store's OnAppend: it encodes committed facts once and
// publishes them. With nobody subscribed there is nothing to encode. That
// is safe against a stream subscribing right now: a stream reads the store
// after it subscribed, and these facts are committed already.
func (p *Publisher) OnAppend(facts []store.Fact) {
	if p.hub.Subscribers() > 0 {
		p.hub.Publish(Events(facts))
	}
}

// OnDelete is the store's OnDelete: it tells every stream that the fact
// was deleted, with a named event that comes in order with the facts.
// With nobody subscribed there is nobody to tell: a stream subscribing now
// reads the store after it subscribed, and the fact is gone from it.
func (p *Publisher) OnDelete(f store.Fact) {
	if p.hub.Subscribers() > 0 {
		p.hub.Publish([]hub.Event{Deleted(f)})
	}
}

// OnReset is the store's OnReset: the store came back without its facts
// (a Redis restarted without persistence, or from an older copy), so the
// facts a stream was built on are gone, even though seqs go on above the
// highest one seen. Every stream ends, with
// hub.ErrReset, and its client reconnects to a snapshot of what there is.
func (p *Publisher) OnReset() {
	p.log.Warn("the store lost its facts (Redis restarted without persistence); ending every stream so clients start over",
		"streams", p.hub.Subscribers())
	p.hub.EndAll(hub.ErrReset)
}

// Events encodes facts as SSE events, once, for the hub to hand the same
// bytes to every subscriber: each with the fact's seq as its id and the
// fact's JSON as its data. JSON never contains a raw line break, so a
// fact's text cannot break out of its data line.
func Events(facts []store.Fact) []hub.Event {
	events := make([]hub.Event, len(facts))
	for i, f := range facts {
		frame := make([]byte, 0, 64+len(f.Info)+len(f.Source)+96)
		events[i] = hub.Event{Seq: f.Seq, Frame: sse.AppendEvent(frame, "", f.Seq, f.AppendJSON)}
	}
	return events
}

// DeletedEvent names the event that tells a stream a fact was deleted.
const DeletedEvent = "deleted"

// Deleted encodes the deletion of f as the named event "deleted" with
// {"id":…,"seq":…} as its data and no id: it is not a fact, so it must not
// move the client's last event id. Its seq in the hub is 0 for the same
// reason, which a stream's cursor always delivers and never moves past.
func Deleted(f store.Fact) hub.Event {
	data, _ := json.Marshal(struct { // cannot fail: a string and a number
		ID  string `json:"id"`
		Seq uint64 `json:"seq"`
	}{f.ID, f.Seq})
	frame := sse.AppendEvent(make([]byte, 0, 48+len(data)), DeletedEvent, 0,
		func(dst []byte) []byte { return append(dst, data...) })
	return hub.Event{Frame: frame}
}

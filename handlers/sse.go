package handlers

import (
	"factstream/hub"
	"factstream/sse"
	"factstream/store"
)

// FactEvents encodes facts as SSE events, once, for the hub to hand the same
// bytes to every subscriber. JSON never contains a raw line break, so a
// fact's text cannot break out of its data line.
func FactEvents(facts []store.Fact) []hub.Event {
	events := make([]hub.Event, len(facts))
	for i, f := range facts {
		frame := make([]byte, 0, 64+len(f.Info)+len(f.Source)+96)
		events[i] = hub.Event{Seq: f.Seq, Frame: sse.AppendEvent(frame, "", f.Seq, f.AppendJSON)}
	}
	return events
}

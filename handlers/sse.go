package handlers

import (
	"encoding/json"
	"strconv"
	"time"

	"factstream/hub"
	"factstream/store"
)

// FactEvents encodes facts as SSE events, once, for the hub to hand the same
// bytes to every subscriber. JSON never contains a raw line break, so a
// fact's text cannot break out of its data line.
func FactEvents(facts []store.Fact) []hub.Event {
	events := make([]hub.Event, len(facts))
	for i, f := range facts {
		data, _ := json.Marshal(f) // a Fact always encodes
		events[i] = hub.Event{Seq: f.Seq, Frame: appendEvent(make([]byte, 0, len(data)+32), f.Seq, data)}
	}
	return events
}

// appendEvent appends one event; id 0 means no id line.
func appendEvent(dst []byte, id uint64, data []byte) []byte {
	if id > 0 {
		dst = append(dst, "id: "...)
		dst = strconv.AppendUint(dst, id, 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, '\n', '\n')
}

func appendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, '\n', '\n')
}

const keepalive = ": keepalive\n\n"

package handlers

import (
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
		frame := make([]byte, 0, 64+len(f.Info)+len(f.Source)+96)
		events[i] = hub.Event{Seq: f.Seq, Frame: appendEvent(frame, f.Seq, f.AppendJSON)}
	}
	return events
}

// appendEvent appends one event whose data appendData writes; id 0 means
// no id line.
func appendEvent(dst []byte, id uint64, appendData func([]byte) []byte) []byte {
	if id > 0 {
		dst = append(dst, "id: "...)
		dst = strconv.AppendUint(dst, id, 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data: "...)
	dst = appendData(dst)
	return append(dst, '\n', '\n')
}

func appendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, '\n', '\n')
}

const keepalive = ": keepalive\n\n"

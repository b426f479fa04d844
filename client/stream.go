package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// read yields the events of one connection until it ends; it reports
// whether any event carried data.
func (s *subscription) read(r *sseReader, yield func(Event, error) bool) (bool, error) {
	// A resume whose first answer is older than the position it asked for
	// meets a replaced store: the server treats such a position as none.
	checkReplaced := s.resume && s.last > 0
	progressed := false
	for {
		ev, err := r.next()
		if err != nil {
			return progressed, err
		}
		if ev.retry >= 0 {
			s.retry = time.Duration(ev.retry) * time.Millisecond
		}
		switch {
		case ev.hasID && ev.id == "" && len(ev.data) == 0:
			// The reset frame: the store lost its facts, so the position
			// means nothing; start over without one.
			if !yield(Event{Reset: &Reset{LastSeq: s.last}}, nil) {
				return progressed, errStopped
			}
			s.last, s.resume, checkReplaced = 0, false, false
			continue
		case ev.name == "truncated" || ev.name == "deleted":
			if err := s.named(ev, yield); err != nil {
				return progressed, err
			}
			continue
		case ev.name != "" && ev.name != "message", len(ev.data) == 0:
			continue // an event of a later version, or only a retry line
		}
		progressed = true
		id, _ := strconv.ParseUint(ev.id, 10, 64)
		if checkReplaced {
			checkReplaced = false
			if id < s.last {
				if !yield(Event{Reset: &Reset{LastSeq: s.last}}, nil) {
					return progressed, errStopped
				}
				s.last = 0
			}
		}
		if err := s.facts(ev.data, yield); err != nil {
			return progressed, err
		}
		if id > s.last {
			s.last = id // the position, even past facts this client never sees
		}
		s.resume = s.resume || s.last > 0
	}
}

// facts yields the facts of one message (an array or a single fact) that
// follow the position, and moves it.
func (s *subscription) facts(data []byte, yield func(Event, error) bool) error {
	var facts []Fact
	if data = bytes.TrimSpace(data); len(data) > 0 && data[0] == '[' {
		if err := json.Unmarshal(data, &facts); err != nil {
			return permanentError{fmt.Errorf("GET /events: a snapshot is no array of facts: %w", err)}
		}
	} else {
		var f Fact
		if err := json.Unmarshal(data, &f); err != nil {
			return permanentError{fmt.Errorf("GET /events: an event is no fact: %w", err)}
		}
		facts = []Fact{f}
	}
	for i := range facts {
		if facts[i].Seq <= s.last {
			continue // delivered before a reconnection
		}
		s.last = facts[i].Seq
		if !yield(Event{Fact: &facts[i]}, nil) {
			return errStopped
		}
	}
	return nil
}

// named yields a truncated or deleted event.
func (s *subscription) named(ev sseEvent, yield func(Event, error) bool) error {
	var out Event
	var v any
	if ev.name == "truncated" {
		out.Truncated = new(Truncated)
		v = out.Truncated
	} else {
		out.Deleted = new(Deleted)
		v = out.Deleted
	}
	if err := json.Unmarshal(ev.data, v); err != nil {
		return permanentError{fmt.Errorf("GET /events: a %s event: %w", ev.name, err)}
	}
	if !yield(out, nil) {
		return errStopped
	}
	return nil
}

package client

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func factJSON(seq uint64) string {
	return fmt.Sprintf(`{"id":"id-%d","seq":%d,"info":"fact %d","source":"","created_at":"2026-11-21T12:00:00.000000Z"}`, seq, seq, seq)
}

func arrayEvent(id string, seqs ...uint64) string {
	parts := make([]string, len(seqs))
	for i, s := range seqs {
		parts[i] = factJSON(s)
	}
	ev := "data: [" + strings.Join(parts, ",") + "]\n\n"
	if id != "" {
		ev = "id: " + id + "\n" + ev
	}
	return ev
}

func factEvent(seq uint64) string {
	return fmt.Sprintf("id: %d\ndata: %s\n\n", seq, factJSON(seq))
}

// describe renders yielded events compactly: "1 2 T(3,7) D(x,4) R(5)".
func describe(events []Event) string {
	var out []string
	for _, ev := range events {
		switch {
		case ev.Fact != nil:
			out = append(out, fmt.Sprint(ev.Fact.Seq))
		case ev.Truncated != nil:
			out = append(out, fmt.Sprintf("T(%d,%d)", ev.Truncated.LastEventID, ev.Truncated.FirstSeq))
		case ev.Deleted != nil:
			out = append(out, fmt.Sprintf("D(%s,%d)", ev.Deleted.ID, ev.Deleted.Seq))
		case ev.Reset != nil:
			out = append(out, fmt.Sprintf("R(%d)", ev.Reset.LastSeq))
		}
	}
	return strings.Join(out, " ")
}

// TestReadYieldsWhatTheStreamSays feeds one connection's bytes, as the
// server writes them, to the subscription and checks what it yields and
// where it would resume.
func TestReadYieldsWhatTheStreamSays(t *testing.T) {
	tests := []struct {
		name       string
		last       uint64 // position before the connection
		resume     bool
		stream     string
		want       string
		wantLast   uint64
		wantResume bool
	}{
		{"SnapshotThenLive", 0, false, "retry: 3000\n\n" + arrayEvent("2", 1, 2) + ": keepalive\n\n" + factEvent(3),
			"1 2 3", 3, true},
		{"CatchUpInSeveralArrays", 2, true, arrayEvent("4", 3, 4) + arrayEvent("6", 5, 6) + factEvent(7),
			"3 4 5 6 7", 7, true},
		{"FactsBeforeThePositionSkipped", 3, true, arrayEvent("4", 2, 3, 4) + factEvent(4) + factEvent(5),
			"4 5", 5, true},
		{"NothingMissed", 5, true, arrayEvent("5"), "", 5, true},
		{"EmptyStoreSnapshot", 0, true, arrayEvent(""), "", 0, true},
		{"PositionPastDeletedFacts", 5, true, arrayEvent("9", 7) + factEvent(10), "7 10", 10, true},
		{"Truncated", 2, true, "event: truncated\ndata: {\"last_event_id\":2,\"first_seq\":6}\n\n" + arrayEvent("7", 6, 7),
			"T(2,6) 6 7", 7, true},
		{"Deleted", 3, true, arrayEvent("3") + "event: deleted\ndata: {\"id\":\"id-2\",\"seq\":2}\n\n" + factEvent(4),
			"D(id-2,2) 4", 4, true},
		{"UnknownNamedEventIgnored", 1, true, "event: later\ndata: {}\n\n" + factEvent(2), "2", 2, true},
		{"ResetFrame", 8, true, arrayEvent("8") + "id:\n\n", "R(8)", 0, false},
		{"ReplacedStore", 8, true, arrayEvent("2", 1, 2) + factEvent(3), "R(8) 1 2 3", 3, true},
		{"ReplacedByAnEmptyStore", 8, true, arrayEvent("") + factEvent(1), "R(8) 1", 1, true},
		{"CutMidEvent", 1, true, arrayEvent("2", 2) + "id: 3\ndata: " + factJSON(3)[:20], "2", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New("http://localhost:3000", Options{})
			if err != nil {
				t.Fatal(err)
			}
			s := &subscription{c: c, last: tt.last, resume: tt.resume}
			var got []Event
			_, err = s.read(newSSEReader(strings.NewReader(tt.stream), 1<<20, nil), func(ev Event, err error) bool {
				got = append(got, ev)
				return true
			})
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read ended with %v, want io.EOF", err)
			}
			if d := describe(got); d != tt.want {
				t.Errorf("yielded %q, want %q", d, tt.want)
			}
			if s.last != tt.wantLast || s.resume != tt.wantResume {
				t.Errorf("would resume %v from %d, want %v from %d", s.resume, s.last, tt.wantResume, tt.wantLast)
			}
		})
	}
}

func TestReadStopsWhenTheConsumerDoes(t *testing.T) {
	c, _ := New("http://localhost:3000", Options{})
	s := &subscription{c: c}
	n := 0
	_, err := s.read(newSSEReader(strings.NewReader(arrayEvent("3", 1, 2, 3)), 1<<20, nil), func(Event, error) bool {
		n++
		return false
	})
	if !errors.Is(err, errStopped) || n != 1 || s.last != 1 {
		t.Fatalf("err %v after %d events at %d; want errStopped after 1 at 1", err, n, s.last)
	}
}

func TestReadRefusesWhatIsNoFact(t *testing.T) {
	for name, stream := range map[string]string{
		"NotJSON":        "data: hello\n\n",
		"NotFacts":       "data: [1,2]\n\n",
		"BadTruncated":   "event: truncated\ndata: nope\n\n",
		"BadDeletedData": "event: deleted\ndata: [\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := New("http://localhost:3000", Options{})
			s := &subscription{c: c}
			_, err := s.read(newSSEReader(strings.NewReader(stream), 1<<20, nil), func(Event, error) bool { return true })
			if !fatal(err) {
				t.Fatalf("err = %v, want a fatal error", err)
			}
		})
	}
}

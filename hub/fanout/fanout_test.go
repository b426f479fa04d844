package fanout_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"factstream/hub"
	"factstream/hub/fanout"
	"factstream/store"
)

func facts(seqs ...uint64) []store.Fact {
	out := make([]store.Fact, len(seqs))
	for i, seq := range seqs {
		out[i] = store.Fact{ID: "0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a7" + string(rune('0'+i)), Seq: seq,
			Info: "line\nbreak \"quoted\"", Source: "https://example.com/", CreatedAt: time.Unix(1e9, 0).UTC()}
	}
	return out
}

func TestEventsCarryEachFactOnceWithItsSeqAsID(t *testing.T) {
	in := facts(7, 8)
	events := fanout.Events(in)
	if len(events) != len(in) {
		t.Fatalf("%d events for %d facts", len(events), len(in))
	}
	for i, ev := range events {
		if ev.Seq != in[i].Seq {
			t.Fatalf("event %d has seq %d, want %d", i, ev.Seq, in[i].Seq)
		}
		head, data, ok := strings.Cut(string(ev.Frame), "\ndata: ")
		if !ok || head != "id: "+strconv.FormatUint(ev.Seq, 10) || !strings.HasSuffix(data, "\n\n") {
			t.Fatalf("frame %q, want an id line, one data line and a blank line", ev.Frame)
		}
		var got store.Fact
		if err := json.Unmarshal([]byte(strings.TrimSuffix(data, "\n\n")), &got); err != nil {
			t.Fatalf("data %q: %v", data, err)
		}
		if got.Seq != in[i].Seq || got.Info != in[i].Info || got.ID != in[i].ID {
			t.Fatalf("got %+v, want %+v", got, in[i])
		}
	}
}

func TestPublisher(t *testing.T) {
	for _, tc := range []struct {
		name string
		// subscribe says whether a stream is subscribed before the append.
		subscribe bool
		wantSeqs  []uint64
	}{
		{"ReachesSubscribers", true, []uint64{1, 2}},
		{"NobodyToTell", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hub.New(hub.Options{})
			defer h.Close()
			p := fanout.New(h, slog.New(slog.DiscardHandler))
			var sub *hub.Subscriber
			if tc.subscribe {
				var err error
				if sub, err = h.Subscribe(""); err != nil {
					t.Fatal(err)
				}
			}
			p.OnAppend(facts(1, 2))
			if sub == nil {
				// A stream subscribing now reads the store for these.
				var err error
				if sub, err = h.Subscribe(""); err != nil {
					t.Fatal(err)
				}
			}
			var got []uint64
			for _, ev := range sub.Take(nil) {
				got = append(got, ev.Seq)
			}
			if len(got) != len(tc.wantSeqs) || (len(got) > 0 && (got[0] != 1 || got[1] != 2)) {
				t.Fatalf("queued seqs %v, want %v", got, tc.wantSeqs)
			}
		})
	}
}

func TestResetEndsEveryStreamAndSaysSo(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	var logs bytes.Buffer
	p := fanout.New(h, slog.New(slog.NewTextHandler(&logs, nil)))
	sub, err := h.Subscribe("")
	if err != nil {
		t.Fatal(err)
	}
	p.OnReset()
	select {
	case <-sub.Done():
	default:
		t.Fatal("a stream still open after the store's reset")
	}
	if !errors.Is(sub.Err(), hub.ErrReset) {
		t.Fatalf("stream ended with %v, want hub.ErrReset", sub.Err())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "streams=1") {
		t.Fatalf("log %q, want a warning naming the streams ended", logs.String())
	}
	if _, err := h.Subscribe(""); err != nil {
		t.Fatalf("subscribing after a reset: %v, want new streams taken", err)
	}
}

func TestDeletedIsANamedEventWithoutID(t *testing.T) {
	f := facts(42)[0]
	ev := fanout.Deleted(f)
	if ev.Seq != 0 {
		t.Fatalf("seq %d, want 0: a deletion is not a fact and must not move a stream's cursor", ev.Seq)
	}
	want := `event: deleted` + "\n" + `data: {"id":"` + f.ID + `","seq":42}` + "\n\n"
	if string(ev.Frame) != want {
		t.Fatalf("frame %q, want %q", ev.Frame, want)
	}
}

func TestOnDeleteReachesSubscribersInOrderWithFacts(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	p := fanout.New(h, slog.New(slog.DiscardHandler))
	p.OnDelete(facts(1)[0]) // nobody subscribed: nothing queued, nothing kept
	sub, err := h.Subscribe("")
	if err != nil {
		t.Fatal(err)
	}
	in := facts(1, 2)
	p.OnAppend(in)
	p.OnDelete(in[0])
	p.OnAppend(facts(3))
	var got []string
	for _, ev := range sub.Take(nil) {
		name, _, _ := strings.Cut(string(ev.Frame), "\n")
		got = append(got, strconv.FormatUint(ev.Seq, 10)+" "+name)
	}
	want := []string{"1 id: 1", "2 id: 2", "0 event: deleted", "3 id: 3"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("queued %q, want %q", got, want)
	}
}

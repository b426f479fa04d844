package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"factstream/app"
	"factstream/internal/redistest"
	"factstream/store"
	"factstream/takeover"
)

// deletedData is the data of a deleted event.
type deletedData struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

// nextNamed returns the next event with data, which must be the named
// event name without an id line, decoded into out.
func nextNamed(tb testing.TB, next func() (sseEvent, error), name string, out any) {
	tb.Helper()
	ev, err := next()
	if err != nil {
		tb.Fatalf("waiting for event %s: %v", name, err)
	}
	if ev.Event != name || ev.HasID {
		tb.Fatalf("event %+v, want event: %s without an id line", ev, name)
	}
	if err := json.Unmarshal([]byte(ev.Data), out); err != nil {
		tb.Fatalf("%s data %q: %v", name, ev.Data, err)
	}
}

// A stream resuming from before the oldest fact kept gets truncated, with
// no id, then exactly the kept facts; one resuming from the oldest kept or
// after it gets no truncated. On bbolt and on Redis, through the server.
func TestResumePastRetentionGetsTruncated(t *testing.T) {
	const posted, kept = 30, 10
	for _, kind := range []string{"bolt", "redis"} {
		t.Run(kind, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.RetentionFacts = kept
			if kind == "bolt" {
				cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db")
			} else {
				cfg.Store = redistest.Start(t).URL()
			}
			s := startServer(t, cfg)
			for i := range posted {
				postFact(t, s.URL, fmt.Sprintf("fact %d", i))
			}
			const first = posted - kept + 1
			eventually(t, 10*time.Second, "retention to apply", func() bool {
				st := keptStatus(t, s.URL)
				return st.FirstSeq == first && st.Facts == kept
			})
			want := allFacts(t, s.URL)
			if len(want) != kept || want[0].Seq != first {
				t.Fatalf("pages hold %d facts from seq %d, want %d from %d", len(want), want[0].Seq, kept, first)
			}
			for _, tc := range []struct {
				lastID    uint64
				truncated bool
				from      int // index in want of the first fact caught up
			}{
				{0, true, 0},
				{5, true, 0},
				{first - 2, true, 0},
				{first - 1, false, 0},
				{first, false, 1},
				{posted - 1, false, kept - 1},
			} {
				t.Run(strconv.FormatUint(tc.lastID, 10), func(t *testing.T) {
					st := openStream(t, s.URL+"/events", http.Header{"Last-Event-ID": {strconv.FormatUint(tc.lastID, 10)}})
					next := func() (sseEvent, error) { return nextData(st) }
					if tc.truncated {
						var tr struct {
							LastEventID *uint64 `json:"last_event_id"`
							FirstSeq    uint64  `json:"first_seq"`
						}
						nextNamed(t, next, "truncated", &tr)
						if tr.LastEventID == nil || *tr.LastEventID != tc.lastID || tr.FirstSeq != first {
							t.Fatalf("truncated %+v, want last_event_id %d and first_seq %d", tr, tc.lastID, first)
						}
					}
					ev, err := next()
					if err != nil {
						t.Fatal(err)
					}
					if ev.Event != "" || ev.ID != strconv.Itoa(posted) {
						t.Fatalf("catch-up %+v, want the facts with id %d (no truncated for a resume from %d)", ev, posted, tc.lastID)
					}
					sameFacts(t, "catch-up", factsOf(t, ev), want[tc.from:])
				})
			}
		})
	}
}

// deleteStreams are the ways a stream is written: taken over (plain
// HTTP/1.1), on its goroutine with the takeover writer off, and over
// HTTP/2, which the writer never takes.
var deleteStreams = []struct {
	name     string
	takeover bool
	h2       bool
}{
	{"Takeover", true, false},
	{"Goroutine", false, false},
	{"HTTP2", true, true},
}

// startWithStream starts a server with cfg and opens a stream on it, over
// HTTP/2 (and TLS) when h2 is set; it returns the server, a client for it
// and the stream's next data event.
func startWithStream(t *testing.T, cfg app.Config, h2 bool) (*server, *http.Client, func() (sseEvent, error)) {
	t.Helper()
	if !h2 {
		s := startServer(t, cfg)
		st := openStream(t, s.URL+"/events", nil)
		return s, http.DefaultClient, func() (sseEvent, error) { return nextData(st) }
	}
	s, client, _ := startTLSServer(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	ts, err := openTLSStream(ctx, client, s.URL+"/events")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.resp.Body.Close() })
	if ts.resp.ProtoMajor != 2 {
		t.Fatalf("stream over %s, want HTTP/2", ts.resp.Proto)
	}
	return s, client, func() (sseEvent, error) { ev, _, err := ts.nextData(); return ev, err }
}

// A delete reaches an open stream as deleted, with no id line, in order
// with the facts, on every way a stream is written.
func TestDeleteReachesOpenStreams(t *testing.T) {
	for _, tc := range deleteStreams {
		t.Run(tc.name, func(t *testing.T) {
			if tc.takeover && !tc.h2 && !takeover.Supported {
				t.Skip("no takeover writer on this platform")
			}
			cfg := testConfig(t)
			cfg.StreamTakeover = tc.takeover
			cfg.AdminTokens = []string{adminToken}
			s, client, next := startWithStream(t, cfg, tc.h2)
			if ev, err := next(); err != nil || ev.Data != "[]" {
				t.Fatalf("snapshot %+v, %v; want an empty one", ev, err)
			}
			if !tc.h2 {
				// The stream is written the way the case names: the
				// counter exists with the writer on, and counts no stream
				// it could not take.
				got := metricValue(scrape(t, s.URL), "factstream_streams_not_taken_over_total")
				if want := map[bool]float64{true: 0, false: -1}[tc.takeover]; got != want {
					t.Fatalf("streams not taken over: %v, want %v", got, want)
				}
			}

			doomed, kept := postWith(t, client, s.URL, "doomed"), postWith(t, client, s.URL, "kept")
			if code := deleteWith(t, client, s.URL, doomed.ID); code != http.StatusNoContent {
				t.Fatalf("DELETE = %d", code)
			}
			after := postWith(t, client, s.URL, "after")
			for _, want := range []store.Fact{doomed, kept} {
				ev, err := next()
				if err != nil || ev.ID != strconv.FormatUint(want.Seq, 10) {
					t.Fatalf("event %+v, %v; want fact %d", ev, err, want.Seq)
				}
			}
			var d deletedData
			nextNamed(t, next, "deleted", &d)
			if d.ID != doomed.ID || d.Seq != doomed.Seq {
				t.Fatalf("deleted %+v, want id %s seq %d", d, doomed.ID, doomed.Seq)
			}
			// The deleted event moved nothing: the next fact follows.
			ev, err := next()
			if err != nil || ev.Event != "" || ev.ID != strconv.FormatUint(after.Seq, 10) {
				t.Fatalf("after the deletion: %+v, %v; want fact %d", ev, err, after.Seq)
			}
		})
	}
}

// postWith posts a fact with client.
func postWith(tb testing.TB, client *http.Client, base, info string) store.Fact {
	tb.Helper()
	resp, err := client.Post(base+"/fact", "application/json", strings.NewReader(`{"info":"`+info+`"}`))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var f store.Fact
	if resp.StatusCode != http.StatusCreated {
		tb.Fatalf("POST /fact = %d", resp.StatusCode)
	}
	if err := jsonDecode(resp, &f); err != nil {
		tb.Fatal(err)
	}
	return f
}

// deleteWith deletes a fact with client and the admin token.
func deleteWith(tb testing.TB, client *http.Client, base, id string) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodDelete, base+"/facts/"+id, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

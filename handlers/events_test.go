package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"factstream/handlers"
	"factstream/hub"
	"factstream/hub/fanout"
	"factstream/store"
	"factstream/store/memory"
	"factstream/store/storetest"
	"factstream/takeover"
)

// streamEnv serves /events over a memory store opened with opts, wired to
// the hub as app.Run wires it: appends and deletions through the fan-out.
// publish, when set, filters what reaches the fan-out's OnAppend.
type streamEnv struct {
	srv   *httptest.Server
	store *memory.Store
}

func newStreamEnv(t *testing.T, opts store.Options, withTakeover bool, publish func([]store.Fact) []store.Fact) *streamEnv {
	t.Helper()
	return newStreamEnvOf(t, hub.Options{Buffer: 64, MaxSubscribers: 10}, opts, withTakeover, publish)
}

// newStreamEnvOf is newStreamEnv with a hub of hubOpts.
func newStreamEnvOf(t *testing.T, hubOpts hub.Options, opts store.Options, withTakeover bool, publish func([]store.Fact) []store.Fact) *streamEnv {
	t.Helper()
	h := hub.New(hubOpts)
	fan := fanout.New(h, slog.New(slog.DiscardHandler))
	opts.OnAppend = fan.OnAppend
	if publish != nil {
		opts.OnAppend = func(fs []store.Fact) { fan.OnAppend(publish(fs)) }
	}
	opts.OnDelete = fan.OnDelete
	st := memory.New(opts)
	so := handlers.StreamOptions{Retry: time.Second, Heartbeat: time.Minute, WriteTimeout: time.Second, SnapshotMax: 100}
	var tw *takeover.Writer
	if withTakeover {
		tw = takeover.New(h, nil)
		so.Takeover = tw
	}
	srv := httptest.NewServer(handlers.Routes(handlers.Deps{
		Logger: slog.New(slog.DiscardHandler), Store: st, Hub: h, Stream: so, MaxBody: 64 << 10,
	}))
	t.Cleanup(func() {
		h.Close()
		if tw != nil {
			tw.Close()
		}
		srv.Close()
		st.Close()
	})
	return &streamEnv{srv: srv, store: st}
}

func (e *streamEnv) append(t *testing.T, n int) []store.Fact {
	t.Helper()
	return storetest.MustAppend(t, e.store, store.AppendRequest{Drafts: storetest.Drafts(n, "fact"), Batch: true}).Facts
}

// event is one SSE event as a client parses it.
type event struct {
	name, data string
	id         string
	hasID      bool
}

func (ev event) String() string {
	s := ""
	if ev.name != "" {
		s += "event: " + ev.name + " "
	}
	if ev.hasID {
		s += "id: " + ev.id + " "
	}
	return s + "data: " + ev.data
}

// eventStream reads the events of one /events response.
type eventStream struct {
	events chan event
}

func openEvents(t *testing.T, url string, lastEventID string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/events", nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("GET /events: %v %v", resp, err)
	}
	s := &eventStream{events: make(chan event, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev event
		for sc.Scan() {
			field, value, _ := strings.Cut(sc.Text(), ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.name = value
			case "id":
				ev.id, ev.hasID = value, true
			case "data":
				ev.data = value
			case "":
				if ev.data != "" || ev.name != "" || ev.hasID {
					s.events <- ev
				}
				ev = event{}
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return s
}

func (s *eventStream) next(t *testing.T) event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return event{}
}

// The bound on the streams of one address holds whether its stream keeps
// its goroutine or is taken over: the client's key is worked out for the
// hub when it bounds clients.
func TestStreamsOfOneClientAreBounded(t *testing.T) {
	for _, withTakeover := range []bool{false, true} {
		t.Run(fmt.Sprintf("takeover=%v", withTakeover), func(t *testing.T) {
			e := newStreamEnvOf(t, hub.Options{Buffer: 64, MaxPerClient: 1}, store.Options{}, withTakeover, nil)
			openEvents(t, e.srv.URL, "").next(t) // the snapshot: the stream is open
			resp, err := http.Get(e.srv.URL + "/events")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("a second stream of one address: %s, want 429", resp.Status)
			}
		})
	}
}

// facts returns the seqs of an array event, or of a single fact.
func seqsOf(t *testing.T, ev event) []uint64 {
	t.Helper()
	var fs []store.Fact
	if strings.HasPrefix(ev.data, "[") {
		if err := json.Unmarshal([]byte(ev.data), &fs); err != nil {
			t.Fatalf("data %q: %v", ev.data, err)
		}
	} else {
		var f store.Fact
		if err := json.Unmarshal([]byte(ev.data), &f); err != nil {
			t.Fatalf("data %q: %v", ev.data, err)
		}
		fs = append(fs, f)
	}
	seqs := make([]uint64, len(fs))
	for i, f := range fs {
		seqs[i] = f.Seq
	}
	return seqs
}

func seqRange(from, to uint64) string {
	var s []string
	for seq := from; seq <= to; seq++ {
		s = append(s, strconv.FormatUint(seq, 10))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// A resume from before the oldest fact kept gets truncated, with no id,
// then the kept facts; a resume after it does not. Deleted facts leave
// holes a catch-up skips without a word.
func TestResumeAfterRemovedFacts(t *testing.T) {
	for _, tc := range []struct {
		name string
		// retention, then the facts appended, then the seqs deleted.
		retention int
		appended  int
		deleted   []uint64
		lastID    string
		// truncated is the data of the truncated event expected, if any.
		truncated string
		wantSeqs  string
		wantID    string
	}{
		{"FromBeforeRetention", 4, 10, nil, "2", `{"last_event_id":2,"first_seq":7}`, seqRange(7, 10), "10"},
		{"FromZero", 4, 10, nil, "0", `{"last_event_id":0,"first_seq":7}`, seqRange(7, 10), "10"},
		{"RightBeforeTheOldestKept", 4, 10, nil, "5", `{"last_event_id":5,"first_seq":7}`, seqRange(7, 10), "10"},
		{"JustBeforeTheOldestKept", 4, 10, nil, "6", "", seqRange(7, 10), "10"},
		{"AmongKeptFacts", 4, 10, nil, "8", "", seqRange(9, 10), "10"},
		{"AtTheHead", 4, 10, nil, "10", "", "[]", "10"},
		{"AboveTheHeadIsAFreshStart", 4, 10, nil, "11", "", seqRange(7, 10), "10"},
		{"OverDeletedFacts", 0, 10, []uint64{3, 4, 9}, "2", "", "[5 6 7 8 10]", "10"},
		{"DeletedUpToTheHead", 0, 5, []uint64{4, 5}, "3", "", "[]", "5"},
		{"OldestKeptDeletedToo", 4, 10, []uint64{7, 8}, "5", `{"last_event_id":5,"first_seq":9}`, seqRange(9, 10), "10"},
		// Nothing kept at all: first_seq names the next seq to be kept.
		{"NothingKept", 0, 3, []uint64{1, 2, 3}, "1", `{"last_event_id":1,"first_seq":4}`, "[]", "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newStreamEnv(t, store.Options{RetentionFacts: tc.retention}, false, nil)
			facts := e.append(t, tc.appended)
			for _, seq := range tc.deleted {
				if _, err := e.store.Delete(context.Background(), facts[seq-1].ID); err != nil {
					t.Fatal(err)
				}
			}
			s := openEvents(t, e.srv.URL, tc.lastID)
			ev := s.next(t)
			if tc.truncated != "" {
				if ev.name != "truncated" || ev.hasID || ev.data != tc.truncated {
					t.Fatalf("first event %v, want event: truncated, no id, data: %s", ev, tc.truncated)
				}
				ev = s.next(t)
			}
			if ev.name != "" || !ev.hasID || ev.id != tc.wantID {
				t.Fatalf("catch-up event %v, want a fact array with id %s", ev, tc.wantID)
			}
			if got := fmt.Sprint(seqsOf(t, ev)); got != tc.wantSeqs {
				t.Fatalf("catch-up seqs %s, want %s", got, tc.wantSeqs)
			}
			// The stream goes on from there: the next fact follows.
			next := e.append(t, 1)[0]
			if ev := s.next(t); ev.name != "" || ev.id != strconv.FormatUint(next.Seq, 10) {
				t.Fatalf("after the catch-up: %v, want fact %d", ev, next.Seq)
			}
		})
	}
}

// A deletion reaches an open stream as a named event without an id, in
// order with the facts, and the stream's position is not moved by it.
func TestDeletedReachesOpenStreams(t *testing.T) {
	for _, tc := range []struct {
		name     string
		takeover bool
	}{
		{"Goroutine", false},
		{"Takeover", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newStreamEnv(t, store.Options{}, tc.takeover, nil)
			facts := e.append(t, 3)
			s := openEvents(t, e.srv.URL, "")
			if ev := s.next(t); ev.id != "3" {
				t.Fatalf("snapshot %v, want id 3", ev)
			}
			f4 := e.append(t, 1)[0]
			if _, err := e.store.Delete(context.Background(), facts[1].ID); err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.Delete(context.Background(), f4.ID); err != nil {
				t.Fatal(err)
			}
			e.append(t, 1)
			want := []string{
				"id: 4 data: " + mustJSON(t, f4),
				`event: deleted data: {"id":"` + facts[1].ID + `","seq":2}`,
				`event: deleted data: {"id":"` + f4.ID + `","seq":4}`,
			}
			for _, w := range want {
				if got := s.next(t).String(); got != w {
					t.Fatalf("event %s, want %s", got, w)
				}
			}
			if ev := s.next(t); ev.name != "" || ev.id != "5" {
				t.Fatalf("after the deletions: %v, want fact 5 (the cursor not moved by them)", ev)
			}
		})
	}
}

func mustJSON(t *testing.T, f store.Fact) string {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A live stream that finds facts missing (a store that reported appends
// without facts deleted before it read them, as a Redis tail may) fills
// the gap from the store, skipping what is gone, instead of failing.
func TestLiveGapOverDeletedFacts(t *testing.T) {
	hidden := map[uint64]bool{3: true, 4: true}
	e := newStreamEnv(t, store.Options{}, false, func(fs []store.Fact) []store.Fact {
		var out []store.Fact
		for _, f := range fs {
			if !hidden[f.Seq] {
				out = append(out, f)
			}
		}
		return out
	})
	e.append(t, 2)
	s := openEvents(t, e.srv.URL, "")
	if ev := s.next(t); ev.id != "2" {
		t.Fatalf("snapshot %v, want id 2", ev)
	}
	facts := e.append(t, 2) // 3 and 4 never reach the stream
	for _, f := range facts {
		if _, err := e.store.Delete(context.Background(), f.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.append(t, 1) // 5: after a gap that the store has nothing left to fill with
	for _, want := range []string{"deleted", "deleted", "id: 5 [5]"} {
		ev := s.next(t)
		got := ev.name
		if ev.name == "" {
			got = "id: " + ev.id + " " + fmt.Sprint(seqsOf(t, ev))
		}
		if got != want {
			t.Fatalf("event %v, want %s", ev, want)
		}
	}
}

package tests

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"factstream/store"
)

// tutorialClient does what the tutorials' React app does: it appends every
// array or object it receives to one list, and reconnects with the id of
// the last event it saw, as a browser's EventSource does.
type tutorialClient struct {
	facts  []store.Fact
	lastID string
}

// follow connects (resuming when the client has an id) and reads until it
// has seen the fact with seq head.
func (c *tutorialClient) follow(tb testing.TB, base string, head uint64) {
	tb.Helper()
	h := http.Header{}
	if c.lastID != "" {
		h.Set("Last-Event-ID", c.lastID)
	}
	s := openStream(tb, base+"/events", h)
	defer s.Close()
	for c.seen() < head {
		ev, err := s.Next(5 * time.Second)
		if err != nil {
			tb.Fatalf("waiting for seq %d (have %d): %v", head, c.seen(), err)
		}
		if ev.Data == "" {
			continue // the retry line
		}
		c.facts = append(c.facts, factsOf(tb, ev)...)
		if ev.HasID {
			c.lastID = ev.ID
		}
	}
}

func (c *tutorialClient) seen() uint64 {
	if c.lastID == "" {
		return 0
	}
	n, _ := strconv.ParseUint(c.lastID, 10, 64)
	return n
}

// checkOnce fails unless the client's list is exactly want, in order.
func (c *tutorialClient) checkOnce(tb testing.TB, want []store.Fact) {
	tb.Helper()
	if len(c.facts) != len(want) {
		tb.Fatalf("client shows %d facts, the store has %d", len(c.facts), len(want))
	}
	for i := range want {
		if c.facts[i].ID != want[i].ID || c.facts[i].Seq != want[i].Seq {
			tb.Fatalf("client fact #%d = seq %d, want seq %d", i, c.facts[i].Seq, want[i].Seq)
		}
	}
}

func TestEveryFactOnceAcrossReconnectsAndRestarts(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db")
	srv := startServer(t, cfg)
	var c tutorialClient
	posted := uint64(0)
	post := func(n int) {
		for range n {
			posted = postFact(t, srv.URL, fmt.Sprintf("fact %d", posted+1)).Seq
		}
	}
	for round := range 6 {
		post(2)                      // while the client is away
		c.follow(t, srv.URL, posted) // resumes and catches up
		if round%2 == 1 {
			// Restart on the same file and port; the client comes back
			// with its last id, as a browser would.
			srv.Stop(t)
			cfg.Addr = srv.Addr
			srv = startServer(t, cfg)
		}
	}
	c.checkOnce(t, allFacts(t, srv.URL))
	if posted != 12 {
		t.Fatalf("posted %d facts, want 12", posted)
	}
}

func TestLiveEventsFollowTheSnapshot(t *testing.T) {
	srv := startServer(t, testConfig(t))
	first := postFact(t, srv.URL, "before")
	s := openStream(t, srv.URL+"/events", nil)
	retry, err := s.Next(2 * time.Second)
	if err != nil || retry.Retry != "3000" {
		t.Fatalf("first event = %+v, %v; want retry: 3000", retry, err)
	}
	snap, err := s.Next(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := factsOf(t, snap); len(got) != 1 || got[0].ID != first.ID || snap.ID != "1" {
		t.Fatalf("snapshot = id %q %v, want [fact 1] with id 1", snap.ID, got)
	}
	second := postFact(t, srv.URL, "after")
	ev, err := s.Next(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := factsOf(t, ev); ev.ID != "2" || ev.Event != "" || len(got) != 1 || got[0].ID != second.ID {
		t.Fatalf("live event = %+v, want fact 2 with id 2 and no event name", ev)
	}
	for name, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
		"Connection":        "keep-alive",
	} {
		if got := s.Resp.Header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
}

func TestResumeEdgeCases(t *testing.T) {
	cfg := testConfig(t)
	cfg.SnapshotMax = 3
	srv := startServer(t, cfg)
	for i := range 5 {
		postFact(t, srv.URL, fmt.Sprintf("f%d", i))
	}
	cases := []struct {
		name     string
		url      string
		header   string
		wantID   string
		wantSeqs []uint64
	}{
		{"FreshIsCappedToSnapshotMax", "/events", "", "5", []uint64{3, 4, 5}},
		{"ZeroMeansWholeHistory", "/events", "0", "5", []uint64{1, 2, 3, 4, 5}},
		{"HeaderResumes", "/events", "3", "5", []uint64{4, 5}},
		{"QueryResumes", "/events?lastEventId=2", "", "5", []uint64{3, 4, 5}},
		{"HeaderBeatsQuery", "/events?lastEventId=1", "4", "5", []uint64{5}},
		{"UpToDate", "/events", "5", "5", nil},
		{"AboveHeadIsNoID", "/events", "99", "5", []uint64{3, 4, 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Last-Event-ID", tc.header)
			}
			s := openStream(t, srv.URL+tc.url, h)
			if _, err := s.Next(2 * time.Second); err != nil { // retry
				t.Fatal(err)
			}
			ev, err := s.Next(2 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			got := factsOf(t, ev)
			if ev.ID != tc.wantID || len(got) != len(tc.wantSeqs) {
				t.Fatalf("snapshot id %q with %d facts, want id %s with %v", ev.ID, len(got), tc.wantID, tc.wantSeqs)
			}
			for i, f := range got {
				if f.Seq != tc.wantSeqs[i] {
					t.Fatalf("snapshot seqs %v, want %v", got, tc.wantSeqs)
				}
			}
		})
	}
}

func TestEmptyStoreSnapshotHasNoID(t *testing.T) {
	srv := startServer(t, testConfig(t))
	s := openStream(t, srv.URL+"/events", nil)
	s.Next(2 * time.Second) // retry
	ev, err := s.Next(2 * time.Second)
	if err != nil || ev.Data != "[]" || ev.HasID {
		t.Fatalf("snapshot of an empty store = %+v, %v; want data [] without id", ev, err)
	}
}

func TestLongCatchUpIsSplitIntoArrays(t *testing.T) {
	srv := startServer(t, testConfig(t))
	batch := make([]map[string]string, 1000)
	for i := range batch {
		batch[i] = map[string]string{"info": fmt.Sprintf("bulk %d", i)}
	}
	for range 3 {
		if code, body := postJSON(t, srv.URL+"/facts", batch, nil); code != http.StatusCreated {
			t.Fatalf("POST /facts = %d %s", code, body)
		}
	}
	c := tutorialClient{lastID: "500"}
	c.follow(t, srv.URL, 3000)
	if len(c.facts) != 2500 || c.facts[0].Seq != 501 || c.facts[2499].Seq != 3000 {
		t.Fatalf("catch-up from 500 gave %d facts", len(c.facts))
	}
}

func TestHeartbeatKeepsIdleStreamsAlive(t *testing.T) {
	cfg := testConfig(t)
	cfg.Heartbeat = 50 * time.Millisecond
	srv := startServer(t, cfg)
	s := openStream(t, srv.URL+"/events", nil)
	deadline := time.After(5 * time.Second)
	for comments := 0; comments < 2; {
		select {
		case ev := <-s.events:
			for _, c := range ev.Comments {
				if c == " keepalive" {
					comments++
				}
			}
		case <-deadline:
			t.Fatal("no keepalive comments on an idle stream")
		}
	}
}

// TestChurningSubscribersSeeContiguousRanges has 8 publishers post while 50
// subscribers keep connecting (fresh or resuming) and disconnecting. Every
// connection's snapshot plus events must be a contiguous run of seqs with
// no duplicate, and every subscriber must end at the final head.
func TestChurningSubscribersSeeContiguousRanges(t *testing.T) {
	srv := startServer(t, testConfig(t))
	const publishers, perPublisher, subscribers = 8, 60, 50
	var publishing atomic.Bool
	publishing.Store(true)
	var pubWG, subWG sync.WaitGroup
	for p := range publishers {
		pubWG.Go(func() {
			for i := range perPublisher {
				if _, err := tryPostFact(srv.URL, fmt.Sprintf("p%d-%d", p, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	const head = publishers * perPublisher
	for n := range subscribers {
		subWG.Go(func() { churnSubscriber(t, n, []string{srv.URL}, head, &publishing) })
	}
	pubWG.Wait()
	publishing.Store(false)
	subWG.Wait()
	checkGapless(t, allFacts(t, srv.URL))
}

// churnSubscriber is one churning subscriber: it connects to one of bases at
// random, fresh or resuming from the highest seq it has seen, reads for a
// moment, disconnects, and again, checking that every connection starts
// where it should; once publishing has stopped, its last connection reads
// to head.
func churnSubscriber(t *testing.T, n int, bases []string, head uint64, publishing *atomic.Bool) {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	var last uint64 // highest seq this subscriber has seen
	for {
		done := !publishing.Load()
		base := bases[rng.IntN(len(bases))]
		h := http.Header{}
		resume := rng.IntN(2) == 0
		if resume {
			h.Set("Last-Event-ID", strconv.FormatUint(last, 10))
		}
		s, err := dialStream(base+"/events", h)
		if err != nil {
			t.Errorf("subscriber %d: %v", n, err)
			return
		}
		start, end := connectionRange(t, s, done, head, time.Duration(rng.IntN(40))*time.Millisecond)
		s.Close()
		if resume && start != 0 && start != last+1 {
			t.Errorf("subscriber %d resumed on %s after %d but got %d first", n, base, last, start)
			return
		}
		if !resume && start > 1 {
			t.Errorf("subscriber %d: fresh snapshot on %s starts at %d, want 1", n, base, start)
			return
		}
		last = max(last, end)
		if done {
			if last != head {
				t.Errorf("subscriber %d ended at %d, want head %d", n, last, head)
			}
			return
		}
	}
}

// connectionRange reads one connection and returns the first and last seq
// it delivered (0, 0 for none), failing on any gap or duplicate. It reads
// for about linger, or, when toHead is set, until it has seq head.
func connectionRange(tb testing.TB, s *sseStream, toHead bool, head uint64, linger time.Duration) (first, last uint64) {
	deadline := time.Now().Add(linger)
	var position uint64 // the last event id: where a resume would start
	for toHead || time.Now().Before(deadline) {
		if toHead && position == head {
			break
		}
		wait := time.Until(deadline)
		if toHead {
			wait = 10 * time.Second
		}
		ev, err := s.Next(max(wait, time.Millisecond))
		if err != nil {
			if toHead {
				tb.Errorf("reading to head %d (at %d): %v", head, last, err)
			}
			break
		}
		if ev.Data == "" {
			continue // the retry line
		}
		if ev.HasID {
			position, _ = strconv.ParseUint(ev.ID, 10, 64)
		}
		facts, err := decodeFacts(ev.Data)
		if err != nil {
			tb.Error(err)
			return first, last
		}
		for _, f := range facts {
			switch {
			case first == 0:
				first = f.Seq
			case f.Seq != last+1:
				tb.Errorf("seq %d after %d: gap or duplicate", f.Seq, last)
				return first, last
			}
			last = f.Seq
		}
	}
	return first, last
}

// TestHTTP10ClientGetsAPlainStream: an HTTP/1.0 response has no chunked
// coding, so its stream must not be taken over by the chunk-writing hub.
func TestHTTP10ClientGetsAPlainStream(t *testing.T) {
	srv := startServer(t, testConfig(t))
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /events HTTP/1.0\r\nHost: x\r\n\r\n"))
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for { // the response head
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(line), "transfer-encoding") {
			t.Fatalf("HTTP/1.0 response with %q", line)
		}
		if line == "\r\n" {
			break
		}
	}
	if ev, err := readEvent(r); err != nil || ev.Retry != "3000" {
		t.Fatalf("first event %+v, %v", ev, err)
	}
	readEvent(r) // snapshot
	f := postFact(t, srv.URL, "for an old client")
	if line, err := r.ReadString('\n'); err != nil || line != "id: 1\n" {
		t.Fatalf("the live event starts with %q, %v; want plain SSE, no chunk framing", line, err)
	}
	ev, err := readEvent(r)
	if err != nil || !strings.Contains(ev.Data, f.ID) {
		t.Fatalf("live event %+v, %v; want the fact as plain SSE", ev, err)
	}
}

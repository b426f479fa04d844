package tests

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlowSubscriberIsDroppedAndCatchesUp has one subscriber that never
// reads while 20,000 facts are posted. It must be disconnected, another
// subscriber must still get every fact, and the slow one, reconnecting
// with its last id, must get everything it missed.
func TestSlowSubscriberIsDroppedAndCatchesUp(t *testing.T) {
	cfg := testConfig(t)
	cfg.WriteTimeout = time.Second // how long a blocked write may hang
	cfg.ClientBuffer = 1024        // events a stream may have queued
	srv := startServer(t, cfg)
	const total = 20000
	const lag = 400 // facts the good subscriber may be behind; its queue holds 1,024

	slow, req := openUnreadStream(t, srv)

	good := openStream(t, srv.URL+"/events", nil)
	goodDone := make(chan error, 1)
	var goodSeen atomic.Uint64 // the good subscriber's last seq, for pacing
	go func() {
		var last uint64
		for last < total {
			ev, err := good.Next(30 * time.Second)
			if err != nil {
				goodDone <- fmt.Errorf("good subscriber at %d: %w", last, err)
				return
			}
			if ev.Data == "" {
				continue
			}
			facts, err := decodeFacts(ev.Data)
			if err != nil {
				goodDone <- err
				return
			}
			for _, f := range facts {
				if f.Seq != last+1 {
					goodDone <- fmt.Errorf("good subscriber got %d after %d", f.Seq, last)
					return
				}
				last = f.Seq
			}
			goodSeen.Store(last)
		}
		goodDone <- nil
	}()
	eventually(t, 5*time.Second, "both streams registered", func() bool { return clients(t, srv.URL) == 2 })

	filler := strings.Repeat("x", 400)
	batch := make([]map[string]string, 100)
	for b := range total / len(batch) {
		// The good subscriber is kept within lag facts of the publisher, so
		// that it stays well inside its queue however slowly this machine
		// runs its reader; the slow one never reads and overflows anyway.
		posted := uint64(b * len(batch))
		waitFor(t, goodDone, 30*time.Second, func() bool { return goodSeen.Load()+lag >= posted })
		for i := range batch {
			batch[i] = map[string]string{"info": fmt.Sprintf("%d-%d %s", b, i, filler)}
		}
		if code, body := postJSON(t, srv.URL+"/facts", batch, nil); code != 201 {
			t.Fatalf("POST /facts = %d %s", code, body)
		}
	}
	if err := <-goodDone; err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the slow stream to be dropped", func() bool { return clients(t, srv.URL) == 1 })

	// Read what the slow client had been sent before it was dropped.
	resp, err := http.ReadResponse(bufio.NewReader(slow), req)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	lastID := ""
	for {
		ev, err := readEvent(r)
		if err != nil {
			break // the server closed the connection
		}
		if ev.HasID {
			lastID = ev.ID
		}
	}
	last, _ := strconv.ParseUint(lastID, 10, 64)
	if last >= total {
		t.Fatalf("the slow client received everything (%d); it was never slow", last)
	}

	c := tutorialClient{lastID: lastID}
	c.follow(t, srv.URL, total)
	if got, want := len(c.facts), int(total-last); got != want {
		t.Fatalf("resume after %d delivered %d facts, want %d", last, got, want)
	}
	for i, f := range c.facts {
		if f.Seq != last+uint64(i)+1 {
			t.Fatalf("resume fact #%d has seq %d, want %d", i, f.Seq, last+uint64(i)+1)
		}
	}
}

// waitFor polls cond until it holds, failing the test after limit or as
// soon as the reader reports an error on done (which it then puts back).
func waitFor(tb testing.TB, done chan error, limit time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		select {
		case err := <-done:
			if err != nil {
				tb.Fatal(err)
			}
			done <- err
			return
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the good subscriber fell behind for %v", limit)
		}
	}
}

func clients(tb testing.TB, base string) int {
	tb.Helper()
	var st struct {
		Clients int `json:"clients"`
	}
	getJSON(tb, base+"/status", &st)
	return st.Clients
}

// openUnreadStream opens a stream whose client never reads, with a tiny
// receive buffer so the kernel cannot absorb the backlog for it.
func openUnreadStream(tb testing.TB, srv *server) (net.Conn, *http.Request) {
	tb.Helper()
	conn := dialSmallBuffer(tb, srv.Addr)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events", nil)
	if err := req.Write(conn); err != nil {
		tb.Fatal(err)
	}
	return conn, req
}

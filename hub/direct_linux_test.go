//go:build linux

package hub

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

type ending struct {
	sent int
	why  error
}

func attach(t *testing.T, h *Hub, conn net.Conn, last uint64, heartbeat time.Duration) (*Subscriber, chan ending) {
	t.Helper()
	return attachSub(t, h, mustSubscribe(t, h), conn, last, heartbeat)
}

func attachSub(t *testing.T, h *Hub, sub *Subscriber, conn net.Conn, last uint64, heartbeat time.Duration) (*Subscriber, chan ending) {
	t.Helper()
	ended := make(chan ending, 1)
	err := h.Attach(sub, Stream{Conn: conn, Last: last, Heartbeat: heartbeat, WriteTimeout: time.Second,
		OnEnd: func(n int, why error) { ended <- ending{n, why} }})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	return sub, ended
}

func waitEnd(t *testing.T, ended chan ending) ending {
	t.Helper()
	select {
	case e := <-ended:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end")
		return ending{}
	}
}

func TestTakenOverStreamGetsEventsInOrder(t *testing.T) {
	h := New(Options{Buffer: 100})
	defer h.Close()
	server, client := pair(t)
	sub := mustSubscribe(t, h)
	h.Publish(events(1, 3)) // queued before Attach: only those after Last count
	attachSub(t, h, sub, server, 2, time.Hour)
	h.Publish(events(4, 2))
	r := bufio.NewReader(httputil.NewChunkedReader(client))
	for _, want := range []string{"id: 3", "", "id: 4", "", "id: 5", ""} {
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil || strings.TrimSuffix(line, "\n") != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
}

func TestTakenOverStreamKeepsAlive(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	server, client := pair(t)
	attach(t, h, server, 0, 20*time.Millisecond)
	r := bufio.NewReader(httputil.NewChunkedReader(client))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != ": keepalive\n" {
		t.Fatalf("read %q, %v; want a keepalive comment", line, err)
	}
}

func TestTakenOverStreamNoticesClientClose(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	server, client := pair(t)
	_, done := attach(t, h, server, 0, time.Hour)
	client.Close()
	if e := waitEnd(t, done); !errors.Is(e.why, ErrClientGone) {
		t.Fatalf("ended with %v, want ErrClientGone", e.why)
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after the client closed, want 0", n)
	}
}

func TestTakenOverSlowClientIsDropped(t *testing.T) {
	h := New(Options{Buffer: 50})
	defer h.Close()
	server, _ := pair(t) // the client never reads
	_, done := attach(t, h, server, 0, time.Hour)
	frame := strings.Repeat("x", 64<<10)
	for seq := uint64(1); seq <= 2000; seq++ {
		h.Publish([]Event{{Seq: seq, Frame: []byte(frame)}})
		select {
		case e := <-done:
			if !errors.Is(e.why, ErrSlow) && !errors.Is(e.why, ErrStalled) {
				t.Fatalf("ended with %v, want ErrSlow", e.why)
			}
			if st := h.Stats(); st.Subscribers != 0 {
				t.Fatalf("stats after the drop: %+v", st)
			}
			return
		default:
		}
	}
	e := waitEnd(t, done)
	if !errors.Is(e.why, ErrSlow) && !errors.Is(e.why, ErrStalled) {
		t.Fatalf("ended with %v, want ErrSlow", e.why)
	}
}

func TestTakenOverStreamsEndCleanlyOnClose(t *testing.T) {
	h := New(Options{})
	server, client := pair(t)
	_, done := attach(t, h, server, 0, time.Hour)
	h.Publish(events(1, 1))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := httputil.NewChunkedReader(client)
	first := make([]byte, len("id: 1\n\n"))
	if _, err := io.ReadFull(r, first); err != nil || string(first) != "id: 1\n\n" {
		t.Fatalf("read %q, %v", first, err)
	}
	h.Close()
	if e := waitEnd(t, done); !errors.Is(e.why, ErrClosed) || e.sent != 1 {
		t.Fatalf("ended with %v after %d events, want ErrClosed after 1", e.why, e.sent)
	}
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after the event: %q, %v; want a clean end of the chunked body", rest, err)
	}
}

func TestTakenOverStreamEndsOnAGap(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	server, _ := pair(t)
	_, done := attach(t, h, server, 0, time.Hour)
	h.Publish(events(2, 1))
	if e := waitEnd(t, done); !errors.Is(e.why, ErrGap) {
		t.Fatalf("ended with %v, want ErrGap", e.why)
	}
}

// With one P, a goroutine the network woke runs only when the scheduler
// polls the network; take makes it do so. Gosched alone would leave the
// reader waiting for the runtime's monitor, which polls every 10 ms.
func TestNetTurnRunsGoroutinesTheNetworkWoke(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	turn, err := newNetTurn()
	if err != nil {
		t.Fatal(err)
	}
	relayed := make(chan struct{})
	go turn.relay(func() { close(relayed) })

	server, client := pair(t)
	var got atomic.Bool
	go func() {
		b := make([]byte, 1)
		if _, err := server.Read(b); err == nil {
			got.Store(true)
		}
	}()
	time.Sleep(10 * time.Millisecond) // the reader is parked in the poller
	if _, err := client.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3 && !got.Load(); i++ {
		turn.take(time.Now())
		runtime.Gosched()
	}
	if !got.Load() {
		t.Fatal("the reader did not run during the turns")
	}

	turn.close()
	select {
	case <-relayed:
	case <-time.After(5 * time.Second):
		t.Fatal("the relay did not end when the writer closed its end")
	}
}

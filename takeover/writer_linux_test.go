//go:build linux

package takeover

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"factstream/hub"
	"factstream/sse"
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
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

func events(from, n int) []hub.Event {
	out := make([]hub.Event, n)
	for i := range out {
		seq := uint64(from + i)
		out[i] = hub.Event{Seq: seq, Frame: []byte("id: " + strconv.FormatUint(seq, 10) + "\n\n")}
	}
	return out
}

// fixture is a hub and a writer of its streams, both closed at the end.
type fixture struct {
	h *hub.Hub
	w *Writer
}

func newFixture(t *testing.T, buffer int) *fixture {
	t.Helper()
	h := hub.New(hub.Options{Buffer: buffer})
	w := New(h, nil)
	t.Cleanup(func() { h.Close(); w.Close() })
	return &fixture{h: h, w: w}
}

func (f *fixture) subscribe(t *testing.T) *hub.Subscriber {
	t.Helper()
	sub, err := f.h.Subscribe("")
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return sub
}

type ending struct {
	sent int
	why  error
}

// attach hands conn over as a stream that sent up to last, and returns
// where its end is reported.
func (f *fixture) attach(t *testing.T, sub *hub.Subscriber, conn net.Conn, last uint64, heartbeat time.Duration) chan ending {
	t.Helper()
	ended := make(chan ending, 1)
	err := f.w.eng.attach(f.h, sub, conn, Stream{Last: last, Heartbeat: heartbeat, WriteTimeout: time.Second,
		OnEnd: func(n int, why error) { ended <- ending{n, why} }})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	return ended
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
	f := newFixture(t, 100)
	server, client := pair(t)
	sub := f.subscribe(t)
	f.h.Publish(events(1, 3)) // queued before the takeover: only those after Last count
	f.attach(t, sub, server, 2, time.Hour)
	f.h.Publish(events(4, 2))
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
	f := newFixture(t, 0)
	server, client := pair(t)
	f.attach(t, f.subscribe(t), server, 0, 20*time.Millisecond)
	r := bufio.NewReader(httputil.NewChunkedReader(client))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != ": keepalive\n" {
		t.Fatalf("read %q, %v; want a keepalive comment", line, err)
	}
}

func TestTakenOverStreamNoticesClientClose(t *testing.T) {
	f := newFixture(t, 0)
	server, client := pair(t)
	done := f.attach(t, f.subscribe(t), server, 0, time.Hour)
	client.Close()
	if e := waitEnd(t, done); !errors.Is(e.why, ErrClientGone) {
		t.Fatalf("ended with %v, want ErrClientGone", e.why)
	}
	if n := f.h.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after the client closed, want 0", n)
	}
}

func TestTakenOverSlowClientIsDropped(t *testing.T) {
	f := newFixture(t, 50)
	server, _ := pair(t) // the client never reads
	done := f.attach(t, f.subscribe(t), server, 0, time.Hour)
	frame := strings.Repeat("x", 64<<10)
	for seq := uint64(1); seq <= 2000; seq++ {
		f.h.Publish([]hub.Event{{Seq: seq, Frame: []byte(frame)}})
		select {
		case e := <-done:
			if !errors.Is(e.why, hub.ErrSlow) && !errors.Is(e.why, hub.ErrStalled) {
				t.Fatalf("ended with %v, want ErrSlow", e.why)
			}
			if st := f.h.Stats(); st.Subscribers != 0 {
				t.Fatalf("stats after the drop: %+v", st)
			}
			return
		default:
		}
	}
	e := waitEnd(t, done)
	if !errors.Is(e.why, hub.ErrSlow) && !errors.Is(e.why, hub.ErrStalled) {
		t.Fatalf("ended with %v, want ErrSlow", e.why)
	}
}

// Whichever closes first at shutdown, the hub (ending every subscription)
// or the writer, a taken-over stream ends with the last chunk: its client
// sees a clean end of the body.
func TestTakenOverStreamsEndCleanlyOnClose(t *testing.T) {
	for _, first := range []string{"hub", "writer"} {
		t.Run(first, func(t *testing.T) {
			f := newFixture(t, 0)
			server, client := pair(t)
			done := f.attach(t, f.subscribe(t), server, 0, time.Hour)
			f.h.Publish(events(1, 1))
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			r := httputil.NewChunkedReader(client)
			got := make([]byte, len("id: 1\n\n"))
			if _, err := io.ReadFull(r, got); err != nil || string(got) != "id: 1\n\n" {
				t.Fatalf("read %q, %v", got, err)
			}
			if first == "hub" {
				f.h.Close()
			} else {
				f.w.Close()
			}
			if e := waitEnd(t, done); !errors.Is(e.why, hub.ErrClosed) || e.sent != 1 {
				t.Fatalf("ended with %v after %d events, want ErrClosed after 1", e.why, e.sent)
			}
			if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
				t.Fatalf("after the event: %q, %v; want a clean end of the chunked body", rest, err)
			}
		})
	}
}

func TestTakenOverStreamEndsOnAGap(t *testing.T) {
	f := newFixture(t, 0)
	server, _ := pair(t)
	done := f.attach(t, f.subscribe(t), server, 0, time.Hour)
	f.h.Publish(events(2, 1))
	if e := waitEnd(t, done); !errors.Is(e.why, ErrGap) {
		t.Fatalf("ended with %v, want ErrGap", e.why)
	}
}

func TestTakeOverRefusesAnEndedSubscription(t *testing.T) {
	f := newFixture(t, 0)
	server, _ := pair(t)
	sub := f.subscribe(t)
	f.h.EndAll(hub.ErrReset)
	err := f.w.eng.attach(f.h, sub, server, Stream{Heartbeat: time.Hour})
	if !errors.Is(err, hub.ErrReset) {
		t.Fatalf("attach of an ended subscription: %v, want ErrReset", err)
	}
}

func TestWriterRefusesStreamsOnceClosed(t *testing.T) {
	f := newFixture(t, 0)
	f.w.Close()
	server, _ := pair(t)
	err := f.w.eng.attach(f.h, f.subscribe(t), server, Stream{Heartbeat: time.Hour})
	if !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("attach after Close: %v, want ErrClosed", err)
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

// A socket with room for only part of a keepalive takes that part: the
// rest must follow before anything else, or the client's chunked framing
// breaks. A kernel short write of a few bytes cannot be had on demand, so
// the writer's system call is wrapped to cut the first keepalive after 5
// bytes, as a socket with 5 bytes of room would, and write everything else
// whole.
func TestTakenOverKeepaliveSurvivesAShortWrite(t *testing.T) {
	f := newFixture(t, 0)
	var cut atomic.Bool
	f.w.eng.writev = func(fd int, iov [][]byte) (int, error) {
		b := bytes.Join(iov, nil)
		if bytes.Contains(b, []byte(sse.Keepalive)) && cut.CompareAndSwap(false, true) {
			return unix.Write(fd, b[:5])
		}
		return unix.Writev(fd, iov)
	}
	server, client := pair(t)
	f.attach(t, f.subscribe(t), server, 0, 20*time.Millisecond)
	for !cut.Load() {
		time.Sleep(time.Millisecond)
	}
	f.h.Publish(events(1, 1))
	r := bufio.NewReader(httputil.NewChunkedReader(client))
	for {
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v; want keepalives, then the event", line, err)
		}
		switch line {
		case ": keepalive\n", "\n":
			continue
		case "id: 1\n":
			return
		}
		t.Fatalf("read %q: the chunked framing broke after a short keepalive", line)
	}
}

// A gap among events that wait for a full socket ends the stream at once,
// as one among those written does: the client resumes from the store.
func TestTakenOverStreamEndsOnAGapBehindAFullSocket(t *testing.T) {
	f := newFixture(t, 4000)
	server, client := pair(t) // the client never reads
	server.(*net.TCPConn).SetWriteBuffer(4096)
	client.(*net.TCPConn).SetReadBuffer(4096)
	sub := f.subscribe(t)
	// Queued before the takeover, so that the first flush takes them all:
	// more events than one writev carries, then a gap after them.
	frame := []byte(strings.Repeat("x", 1024))
	var queued []hub.Event
	for seq := uint64(1); seq <= maxIovecs+500; seq++ {
		queued = append(queued, hub.Event{Seq: seq, Frame: frame})
	}
	queued = append(queued, hub.Event{Seq: maxIovecs + 502, Frame: frame})
	f.h.Publish(queued)
	done := f.attach(t, sub, server, 0, time.Hour)
	if e := waitEnd(t, done); !errors.Is(e.why, ErrGap) {
		t.Fatalf("ended with %v, want ErrGap", e.why)
	}
}

// When epoll_wait fails, the writer cannot learn of closing clients or
// writable sockets any more: every stream it holds ends, saying why (its
// client reconnects), and the streams that come next keep their
// goroutine. The poller must not touch the writer's streams to do so: the
// race detector watches.
func TestPollerFailureEndsEveryStream(t *testing.T) {
	// With one P the poller runs from its failure to its end before the
	// writer takes another round, so the race detector sees whether the
	// poller reads what the writer wrote last.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f := newFixture(t, 0)
	server, client := pair(t)
	// A full socket reports nothing when it is added to epoll: the
	// writer's round that registers the stream is then its last.
	server.(*net.TCPConn).SetWriteBuffer(4096)
	client.(*net.TCPConn).SetReadBuffer(4096)
	server.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	for {
		if _, err := server.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	server.SetWriteDeadline(time.Time{})
	ended := make(chan ending, 1)
	err := f.w.eng.attach(f.h, f.subscribe(t), server, Stream{Heartbeat: time.Hour,
		OnEnd: func(n int, why error) { ended <- ending{n, why} }})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	f.w.eng.mu.Lock()
	l := f.w.eng.loop
	f.w.eng.mu.Unlock()
	for registered := false; !registered; {
		time.Sleep(time.Millisecond)
		l.mu.Lock()
		registered = len(l.attached) == 0
		l.mu.Unlock()
	}
	// epoll_wait fails on a descriptor that is no epoll instance; the
	// poller, blocked on the old instance, is woken through the eventfd.
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(null)
	if err := unix.Dup3(null, l.epfd, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Write(l.eventfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	if e := waitEnd(t, ended); !errors.Is(e.why, ErrUnsupported) {
		t.Fatalf("stream ended with %v, want the writer's failure (ErrUnsupported)", e.why)
	}
	next, _ := pair(t)
	if err := f.w.eng.attach(f.h, f.subscribe(t), next, Stream{Heartbeat: time.Hour}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("attach after the failure: %v, want ErrUnsupported", err)
	}
	var logs bytes.Buffer
	f.w.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := httptest.NewRequest(http.MethodGet, "/events", nil)
	if conn := f.w.Hijack(httptest.NewRecorder(), r); conn != nil || !strings.Contains(logs.String(), "epoll_wait") {
		t.Fatalf("Hijack after the failure: %v, logged %q; want the stream left with its goroutine for that reason", conn, logs.String())
	}
}

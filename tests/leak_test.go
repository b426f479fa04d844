package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// vanishAddr is the loopback address that clients who vanish dial from:
// the server's packets to it are dropped once they should be gone.
const vanishAddr = "127.0.0.9"

// TestStreamChurnLeaksNothing opens and ends 10,000 streams, cycling
// through clean closes, resets, clients that give up halfway through their
// request head and clients that vanish without closing, and checks that
// the server's goroutines, open files and heap return to their baseline
// while a live stream goes on receiving facts.
//
// The server runs as its own process so that its files are counted apart
// from the sockets of vanished clients, which this process must keep open
// until the server has given up on them.
func TestStreamChurnLeaksNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 10,000 connections")
	}
	modes := 4
	if why := nftMissing(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: this test must run)", why)
		}
		t.Logf("%s: clients that vanish are left out", why)
		modes = 3
	}
	addr := freePort(t)
	// A short heartbeat and write timeout let the server find vanished
	// clients within seconds: a keepalive nobody acknowledges.
	srv := startProcess(t, t.TempDir(), addr, "--store", "memory:", "--heartbeat", "1s",
		"--write-timeout", "500ms", "--log-level", "warn")
	postFact(t, srv.URL, "one fact, so every snapshot carries data")
	live := openStream(t, srv.URL+"/events", nil)
	live.Next(2 * time.Second) // retry
	live.Next(2 * time.Second) // snapshot

	vanished := churn(t, addr, 400, modes) // warm up pools before measuring
	release(t, srv.URL, vanished)
	base := settle(t, srv.URL, serverUsage{})

	vanished = churn(t, addr, 10000, modes)
	if want := 10000 / 4 * (modes - 3); len(vanished) != want {
		t.Fatalf("%d clients vanished, want %d", len(vanished), want)
	}
	// Every other client has gone; the vanished ones still look alive.
	eventually(t, 15*time.Second, "the streams of clients that left to end", func() bool {
		return clients(t, srv.URL) == len(vanished)+1
	})
	release(t, srv.URL, vanished)
	after := settle(t, srv.URL, base)
	t.Logf("goroutines %d -> %d, fds %d -> %d, heap %d KiB -> %d KiB, rss %d KiB -> %d KiB",
		base.goroutines, after.goroutines, base.fds, after.fds,
		base.heap>>10, after.heap>>10, base.rss>>10, after.rss>>10)
	if after.goroutines > base.goroutines+2 {
		t.Errorf("goroutines: %d after churn, baseline %d", after.goroutines, base.goroutines)
	}
	if after.fds > base.fds+2 {
		t.Errorf("open files: %d after churn, baseline %d", after.fds, base.fds)
	}
	if after.heap > base.heap+16<<20 {
		t.Errorf("heap in use: %d KiB after churn, baseline %d KiB", after.heap>>10, base.heap>>10)
	}

	f := postFact(t, srv.URL, "still live")
	if ev, err := live.Next(5 * time.Second); err != nil || factsOf(t, ev)[0].ID != f.ID {
		t.Fatalf("the live stream got %+v, %v", ev, err)
	}
}

// churn makes n connections, 32 at a time, cycling through the first modes
// ways a client can leave (see oneConnection); it returns the connections
// of clients that vanish, still open.
func churn(t *testing.T, addr string, n, modes int) []net.Conn {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		vanished []net.Conn
	)
	work := make(chan int)
	errs := make(chan error, n)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				conn, err := oneConnection(addr, i%modes)
				if err != nil {
					errs <- err
				}
				if conn != nil {
					mu.Lock()
					vanished = append(vanished, conn)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return vanished
}

// oneConnection runs one client that leaves in the given way: 0 closes
// cleanly, 1 resets, 2 gives up halfway through its request head, 3
// vanishes and returns its connection, which it never closes.
func oneConnection(addr string, mode int) (net.Conn, error) {
	dialer := net.Dialer{Timeout: 10 * time.Second}
	if mode == 3 {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(vanishAddr)}
	}
	c, err := dialer.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := c.(*net.TCPConn)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if mode == 2 { // gives up in the middle of its request head
		_, err := conn.Write([]byte("GET /events HTTP/1.1\r\nHost: x\r\n"))
		conn.Close()
		return nil, err
	}
	if err := readSnapshot(conn); err != nil {
		conn.Close()
		return nil, err
	}
	switch mode {
	case 1:
		conn.SetLinger(0) // close with a reset instead of a FIN
	case 3:
		return conn, nil
	}
	return nil, conn.Close()
}

// readSnapshot requests a stream and reads up to its first data line.
func readSnapshot(conn net.Conn) error {
	if _, err := conn.Write([]byte("GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the stream: %w", err)
		}
		if strings.HasPrefix(line, "data: ") {
			return nil
		}
	}
}

// release makes the vanished clients disappear from the network, waits
// until the server has ended their streams (only the live one is left) and
// then closes their sockets here.
func release(t *testing.T, base string, vanished []net.Conn) {
	t.Helper()
	if len(vanished) == 0 {
		return
	}
	undo := nftDrop(t, "ip daddr "+vanishAddr+" drop")
	eventually(t, 30*time.Second, "the vanished clients' streams to end", func() bool { return clients(t, base) == 1 })
	undo()
	for _, c := range vanished {
		c.Close()
	}
}

// serverUsage is what the server process holds, read from its /metrics.
type serverUsage struct {
	goroutines, fds int
	heap, rss       uint64
}

// settle waits until the server's goroutines and open files fall to those
// of want (or for 10 s), and returns what it holds then.
func settle(t *testing.T, base string, want serverUsage) serverUsage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u := usage(t, base)
		if (u.goroutines <= want.goroutines && u.fds <= want.fds) || want.fds == 0 || time.Now().After(deadline) {
			return u
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// usage scrapes the server's own Go and process metrics, on a connection of
// its own so that the scrape adds the same one file every time.
func usage(t *testing.T, base string) serverUsage {
	t.Helper()
	client := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	values := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			values[name] = v
		}
	}
	for _, name := range []string{"go_goroutines", "process_open_fds", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes"} {
		if _, ok := values[name]; !ok {
			t.Fatalf("/metrics has no %s", name)
		}
	}
	return serverUsage{
		goroutines: int(values["go_goroutines"]),
		fds:        int(values["process_open_fds"]),
		heap:       uint64(values["go_memstats_heap_inuse_bytes"]),
		rss:        uint64(values["process_resident_memory_bytes"]),
	}
}

// TestPlainStreamsHoldNoGoroutine checks that plain HTTP/1.1 streams are
// taken over by the hub after their snapshot: 500 open streams must not
// cost the server a goroutine each, and must still receive facts.
func TestPlainStreamsHoldNoGoroutine(t *testing.T) {
	cfg := testConfig(t)
	cfg.StreamTakeover = true // what this test is about
	srv := startServer(t, cfg)
	base := runtime.NumGoroutine()
	var conns []*bufio.Reader
	for range 500 {
		conn, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"))
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, "data: ") {
				break
			}
		}
		conns = append(conns, r)
	}
	eventually(t, 5*time.Second, "stream goroutines to end", func() bool { return runtime.NumGoroutine() < base+50 })
	f := postFact(t, srv.URL, "to every stream")
	for i, r := range conns {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if strings.HasPrefix(line, "data: ") {
				if !strings.Contains(line, f.ID) {
					t.Fatalf("stream %d got %s", i, line)
				}
				break
			}
		}
	}
}

// TestVanishedClientsAreFoundWithoutTakeover: streams written by their own
// goroutine (takeover off, as every stream over HTTP/2 or TLS) also end
// soon after their clients vanish without closing. Their heartbeats land
// in the socket buffer, so no write deadline fires; the kernel reports the
// connection failed once nothing is acknowledged for write_timeout
// (TCP_USER_TIMEOUT) instead of after minutes of retransmissions.
func TestVanishedClientsAreFoundWithoutTakeover(t *testing.T) {
	if why := nftMissing(); why != "" {
		skipUnlessCI(t, why)
	}
	addr := freePort(t)
	srv := startProcess(t, t.TempDir(), addr, "--store", "memory:", "--heartbeat", "1s",
		"--write-timeout", "500ms", "--stream-takeover=false", "--log-level", "warn")
	const n = 20
	for range n {
		c, err := oneConnection(addr, 3)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	if got := clients(t, srv.URL); got != n {
		t.Fatalf("%d streams open, want %d", got, n)
	}
	nftDrop(t, "ip daddr "+vanishAddr+" drop")
	eventually(t, 15*time.Second, "the vanished clients' streams to end", func() bool { return clients(t, srv.URL) == 0 })
}

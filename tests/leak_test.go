package tests

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStreamChurnLeaksNothing opens and ends 10,000 streams (clean closes,
// resets, and clients that give up halfway through their request head) and
// checks that goroutines, file descriptors and heap return to their
// baseline.
func TestStreamChurnLeaksNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 10,000 connections")
	}
	srv := startServer(t, testConfig(t))
	postFact(t, srv.URL, "one fact, so every snapshot carries data")
	churn(t, srv.Addr, 200) // warm up pools before measuring
	baseGoroutines, baseFDs, baseHeap := settle(t, srv.URL, 0, 0)

	churn(t, srv.Addr, 10000)
	goroutines, fds, heap := settle(t, srv.URL, baseGoroutines, baseFDs)
	t.Logf("goroutines %d -> %d, fds %d -> %d, heap %d KiB -> %d KiB",
		baseGoroutines, goroutines, baseFDs, fds, baseHeap>>10, heap>>10)
	if goroutines > baseGoroutines+2 {
		t.Errorf("goroutines: %d after churn, baseline %d", goroutines, baseGoroutines)
	}
	if fds > baseFDs+2 {
		t.Errorf("open files: %d after churn, baseline %d", fds, baseFDs)
	}
	if heap > baseHeap+16<<20 {
		t.Errorf("heap in use: %d KiB after churn, baseline %d KiB", heap>>10, baseHeap>>10)
	}
}

// churn makes n connections, 32 at a time, cycling through the ways a
// client can leave.
func churn(t *testing.T, addr string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, n)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				if err := oneConnection(addr, i%3); err != nil {
					errs <- err
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
}

func oneConnection(addr string, mode int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	conn := c.(*net.TCPConn)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if mode == 2 { // gives up in the middle of its request head
		_, err := conn.Write([]byte("GET /events HTTP/1.1\r\nHost: x\r\n"))
		return err
	}
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
			break
		}
	}
	if mode == 1 {
		conn.SetLinger(0) // close with a reset instead of a FIN
	}
	return nil
}

// settle waits for the server to notice every client has gone, then
// returns goroutines, open files and heap in use once they stop falling
// towards the wanted baseline (or after a timeout).
func settle(t *testing.T, base string, wantGoroutines, wantFDs int) (int, int, uint64) {
	t.Helper()
	eventually(t, 15*time.Second, "all streams to end", func() bool { return clients(t, base) == 0 })
	var g, fds int
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		g, fds = runtime.NumGoroutine(), openFiles(t)
		if (wantGoroutines == 0 || (g <= wantGoroutines && fds <= wantFDs)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return g, fds, ms.HeapInuse
}

func openFiles(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(entries)
}

// TestPlainStreamsHoldNoGoroutine checks that plain HTTP/1.1 streams are
// taken over by the hub after their snapshot: 500 open streams must not
// cost the server a goroutine each, and must still receive facts.
func TestPlainStreamsHoldNoGoroutine(t *testing.T) {
	srv := startServer(t, testConfig(t))
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

package tests

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// readUntilClosed reads conn until the server closes it, and reports
// whether that happened before the deadline.
func readUntilClosed(conn net.Conn, deadline time.Time) bool {
	conn.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func TestIdleConnectionIsClosed(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReadHeaderTimeout = 200 * time.Millisecond
	srv := startServer(t, cfg)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if !readUntilClosed(conn, time.Now().Add(10*time.Second)) {
		t.Fatal("a connection that sent nothing was still open after 10s")
	}
}

func TestSlowlorisIsCutOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReadHeaderTimeout = 300 * time.Millisecond
	srv := startServer(t, cfg)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
	closed := make(chan struct{})
	go func() {
		readUntilClosed(conn, time.Now().Add(30*time.Second))
		close(closed)
	}()
	// One byte every 50 ms would take several seconds for the whole head.
	for i := 0; i < len(head); i++ {
		select {
		case <-closed:
			return // cut off before the head was complete
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{head[i]}); err != nil {
			return // cut off
		}
	}
	t.Fatal("the server accepted a request head trickled in one byte at a time")
}

// TestFloodsDoNotStarveOthers opens trickling connections and far more
// streams than max-clients allows. The extra streams get 503 with
// Retry-After before any stream starts; a subscriber that was there first
// still receives, publishing and health checks still answer, and a freed
// slot can be taken again.
func TestFloodsDoNotStarveOthers(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxClients = 20
	srv := startServer(t, cfg)
	first := openStream(t, srv.URL+"/events", nil)
	first.Next(2 * time.Second) // retry
	first.Next(2 * time.Second) // snapshot

	var wg sync.WaitGroup
	for range 100 { // trickling heads
		wg.Go(func() {
			conn, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				return
			}
			defer conn.Close()
			conn.Write([]byte("GET /events HTTP/1.1\r\nHo"))
			time.Sleep(time.Second)
		})
	}
	var mu sync.Mutex
	var streams []*sseStream
	refused := 0
	for range 60 {
		wg.Go(func() {
			s, err := dialStream(srv.URL+"/events", nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch s.Resp.StatusCode {
			case http.StatusOK:
				streams = append(streams, s)
			case http.StatusServiceUnavailable:
				if s.Resp.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
				refused++
				s.Close()
			default:
				t.Errorf("stream status %d", s.Resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if len(streams) != cfg.MaxClients-1 || refused != 60-len(streams) {
		t.Fatalf("%d streams accepted and %d refused, want %d accepted", len(streams), refused, cfg.MaxClients-1)
	}
	f := postFact(t, srv.URL, "still here")
	ev, err := first.Next(5 * time.Second)
	if err != nil || factsOf(t, ev)[0].ID != f.ID {
		t.Fatalf("the first subscriber got %+v, %v; want the new fact", ev, err)
	}
	streams[0].Close()
	eventually(t, 5*time.Second, "a freed slot to be taken again", func() bool {
		s, err := dialStream(srv.URL+"/events", nil)
		if err != nil {
			return false
		}
		defer s.Close()
		return s.Resp.StatusCode == http.StatusOK
	})
	for _, s := range streams[1:] {
		s.Close()
	}
}

package tests

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"factstream/takeover"
)

// A body that trickles in is cut at read_timeout with 408 and the
// connection closed; one that arrives within it is taken.
func TestSlowBodyGets408(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReadTimeout = time.Second
	srv := startServer(t, cfg)

	for _, tc := range []struct {
		name  string
		every time.Duration // between two bytes of the body
		want  int
	}{
		{"WithinReadTimeout", 10 * time.Millisecond, http.StatusCreated},
		{"Trickled", 200 * time.Millisecond, http.StatusRequestTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"info":"sent slowly"}`
			conn, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /fact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
			go func() {
				for i := range len(body) {
					if _, err := conn.Write([]byte{body[i]}); err != nil {
						return // cut by the server
					}
					time.Sleep(tc.every)
				}
			}()
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(conn)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			var p struct {
				Type string `json:"type"`
			}
			json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, p.Type, tc.want)
			}
			if tc.want != http.StatusRequestTimeout {
				return
			}
			if p.Type != "urn:factstream:problem:request-timeout" || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("408 as %q %q, want the request-timeout problem", resp.Header.Get("Content-Type"), p.Type)
			}
			// The client is still trickling: a byte that reaches the
			// closed connection draws a reset, which closes it as well.
			if _, err := r.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the connection stayed open after the 408: %v", err)
			}
		})
	}
	if n := keptStatus(t, srv.URL).Facts; n != 1 {
		t.Fatalf("%d facts stored, want only the one that arrived in time", n)
	}
}

// Neither deadline ends a stream, however long it stays idle, on any way
// a stream is written.
func TestDeadlinesLeaveStreamsAlone(t *testing.T) {
	for _, tc := range deleteStreams {
		t.Run(tc.name, func(t *testing.T) {
			if tc.takeover && !tc.h2 && !takeover.Supported {
				t.Skip("no takeover writer on this platform")
			}
			cfg := testConfig(t)
			cfg.StreamTakeover = tc.takeover
			cfg.ReadTimeout = 300 * time.Millisecond
			cfg.WriteTimeout = 300 * time.Millisecond
			cfg.Heartbeat = time.Hour // nothing written while idle
			s, client, next := startWithStream(t, cfg, tc.h2)
			if ev, err := next(); err != nil || ev.Data != "[]" {
				t.Fatalf("snapshot %+v, %v; want an empty one", ev, err)
			}
			time.Sleep(2 * time.Second) // several times both deadlines
			f := postWith(t, client, s.URL, "after a quiet while")
			ev, err := next()
			if err != nil || ev.ID != fmt.Sprint(f.Seq) {
				t.Fatalf("after idling: %+v, %v; want fact %d", ev, err, f.Seq)
			}
		})
	}
}

// A client that does not take an answer within write_timeout is cut, and
// the server lets go of the answer, rather than holding it for as long as
// the client likes.
func TestUntakenAnswerIsCut(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBody = 8 << 20
	cfg.WriteTimeout = time.Second
	srv := startServer(t, cfg)
	if code, body := postJSON(t, srv.URL+"/facts", maxFactBatch(1000, 0), nil); code != http.StatusCreated {
		t.Fatalf("POST /facts = %d %s", code, body)
	}
	resp, err := http.Get(srv.URL + "/facts?limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	full, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	conn := dialUnreadPath(t, srv.Addr, "/facts?limit=1000")
	time.Sleep(3 * time.Second) // three write timeouts without reading
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open 10 s later, %d bytes read", got)
	}
	if got >= full {
		t.Fatalf("the client got the whole page (%d bytes of %d) after leaving it untaken for 3 s", got, full)
	}
	t.Logf("page of %d bytes cut after %d reached the client", full, got)
}

// dialUnreadPath sends GET path on a socket with a 4 KiB receive buffer
// and does not read it.
func dialUnreadPath(tb testing.TB, addr, path string) net.Conn {
	tb.Helper()
	conn := dialSmallBuffer(tb, addr)
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		tb.Fatal(err)
	}
	return conn
}

// dialSmallBuffer connects with a 4 KiB receive buffer, so that the
// kernel cannot absorb much of what the server sends a client that does
// not read.
func dialSmallBuffer(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// Past max_streams_per_ip streams from one client, a new one gets 429;
// other clients are not affected, a closed stream frees its slot, and a
// client behind a trusted proxy is told apart by X-Forwarded-For.
func TestStreamsPerAddress(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxStreamsPerIP = 2
	cfg.TrustedProxies = []string{"127.0.0.1"}
	srv := startServer(t, cfg)
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }

	first := openStream(t, srv.URL+"/events", from("203.0.113.7"))
	openStream(t, srv.URL+"/events", from("203.0.113.7"))
	third, err := dialStream(srv.URL+"/events", from("203.0.113.7"))
	if err != nil {
		t.Fatal(err)
	}
	if third.Resp.StatusCode == http.StatusOK {
		third.Close()
		t.Fatal("a third stream of one client was let in, over max_streams_per_ip 2")
	}
	body, _ := io.ReadAll(third.Resp.Body)
	third.Close()
	if third.Resp.StatusCode != http.StatusTooManyRequests || third.Resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "urn:factstream:problem:too-many-client-streams") {
		t.Fatalf("third stream of one client = %d Retry-After %q %s; want 429 with Retry-After",
			third.Resp.StatusCode, third.Resp.Header.Get("Retry-After"), body)
	}
	openStream(t, srv.URL+"/events", from("203.0.113.8")) // another client

	first.Close()
	eventually(t, 5*time.Second, "the closed stream's slot to be free", func() bool {
		s, err := dialStream(srv.URL+"/events", from("203.0.113.7"))
		if err != nil {
			return false
		}
		if s.Resp.StatusCode == http.StatusOK {
			t.Cleanup(s.Close)
			return true
		}
		s.Close()
		return false
	})
}

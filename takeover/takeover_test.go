package takeover

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"factstream/hub"
)

func TestEndChunkedEndsARefusedStreamAsTheWriterWould(t *testing.T) {
	for _, tc := range []struct {
		why  error
		want string
	}{
		{hub.ErrReset, "5\r\nid:\n\n\r\n0\r\n\r\n"},
		{hub.ErrClosed, "0\r\n\r\n"},
		{hub.ErrSlow, ""},
	} {
		t.Run(tc.why.Error(), func(t *testing.T) {
			server, client := net.Pipe()
			got := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(client)
				got <- string(b)
			}()
			endChunked(server, tc.why)
			server.Close()
			if g := <-got; g != tc.want {
				t.Fatalf("endChunked(%v) wrote %q, want %q", tc.why, g, tc.want)
			}
		})
	}
}

// Streams that cannot be taken over stay with their goroutine, counted;
// the first of them is logged at debug level, and only the first: one
// proxy speaking HTTP/2 leaves every stream so.
func TestHijackCountsStreamsItCannotTake(t *testing.T) {
	request := func(proto string, major, minor int, tls *tls.ConnectionState) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/events", nil)
		r.Proto, r.ProtoMajor, r.ProtoMinor, r.TLS = proto, major, minor, tls
		return r
	}
	var logs bytes.Buffer
	w := New(hub.New(hub.Options{}), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer w.Close()
	for i, tc := range []struct {
		name string
		r    *http.Request
		why  string
	}{
		{"HTTP2", request("HTTP/2.0", 2, 0, &tls.ConnectionState{}), "not HTTP/1.1"},
		{"HTTP10", request("HTTP/1.0", 1, 0, nil), "not HTTP/1.1"},
		{"TLS", request("HTTP/1.1", 1, 1, &tls.ConnectionState{}), "TLS"},
		// A recorder, like any wrapper that cannot hijack.
		{"WriterRefuses", request("HTTP/1.1", 1, 1, nil), "hijack refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if conn := w.Hijack(httptest.NewRecorder(), tc.r); conn != nil {
				t.Fatal("Hijack took a connection it cannot take over")
			}
			if got, want := w.NotTakenOver(), uint64(i+1); got != want {
				t.Fatalf("NotTakenOver() = %d, want %d", got, want)
			}
		})
	}
	if lines := strings.Count(logs.String(), "\n"); lines != 1 || !strings.Contains(logs.String(), "level=DEBUG") ||
		!strings.Contains(logs.String(), `reason="not HTTP/1.1"`) {
		t.Fatalf("logs %q, want one debug line with the first reason", logs.String())
	}
}

// A plain HTTP/1.1 stream is taken over after its first chunk, and the
// client reads one body: what net/http wrote, then what the writer wrote.
func TestHijackTakesAPlainHTTP11Stream(t *testing.T) {
	if !Supported {
		t.Skip("no takeover on this platform")
	}
	h := hub.New(hub.Options{})
	defer h.Close()
	w := New(h, nil)
	defer w.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(rw, "data: snapshot\n\n")
		http.NewResponseController(rw).Flush()
		conn := w.Hijack(rw, r)
		if conn == nil {
			return // the test fails on the body
		}
		sub, err := h.Subscribe("")
		if err != nil {
			conn.Close()
			return
		}
		w.Attach(conn, sub, Stream{Heartbeat: 1 << 40})
		h.Publish([]hub.Event{{Seq: 1, Frame: []byte("id: 1\ndata: live\n\n")}})
	}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := "data: snapshot\n\nid: 1\ndata: live\n\n"
	body := make([]byte, len(want))
	if _, err := io.ReadFull(resp.Body, body); err != nil || string(body) != want {
		t.Fatalf("body %q, %v; want %q", body, err, want)
	}
	w.Close() // ends the body cleanly
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("after the live event: %q, %v; want a clean end", rest, err)
	}
	if n := w.NotTakenOver(); n != 0 {
		t.Fatalf("NotTakenOver() = %d, want 0", n)
	}
}

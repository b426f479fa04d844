package handlers_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"factstream/handlers"
	"factstream/hub"
	"factstream/hub/fanout"
	"factstream/sse"
	"factstream/store"
	"factstream/store/memory"
	"factstream/takeover"
)

// TestStreamEndsByEmptyingTheLastEventIDOnReset ends every stream as the
// app does when Redis lost its facts. Over HTTP/1.1 (streams taken over by
// the takeover writer, or kept by their handler when takeover is off) and
// HTTP/2 (streams kept by their handler) alike, the stream must end, and
// its last frame must empty the client's last event id, so that an
// EventSource reconnects without Last-Event-ID.
func TestStreamEndsByEmptyingTheLastEventIDOnReset(t *testing.T) {
	for _, tc := range []struct {
		name     string
		proto    string
		takeover bool
	}{
		{"HTTP/1.1", "HTTP/1.1", true},
		{"HTTP/1.1-takeover-off", "HTTP/1.1", false},
		{"HTTP/2.0", "HTTP/2.0", true},
	} {
		proto := tc.proto
		t.Run(tc.name, func(t *testing.T) {
			h := hub.New(hub.Options{Buffer: 64})
			st := memory.New(store.Options{OnAppend: func(fs []store.Fact) { h.Publish(fanout.Events(fs)) }})
			o := handlers.StreamOptions{Retry: time.Second, Heartbeat: time.Minute, WriteTimeout: time.Second, SnapshotMax: 100}
			var tw *takeover.Writer
			if tc.takeover {
				tw = takeover.New(h, nil)
				defer tw.Close()
				o.Takeover = tw
			}
			srv := httptest.NewUnstartedServer(handlers.Routes(handlers.Deps{
				Logger:   slog.New(slog.DiscardHandler),
				Store:    st,
				Hub:      h,
				Stream:   o,
				MaxBody:  64 << 10,
				Instance: handlers.Instance{ID: "t", StoreKind: "memory", Version: "test", Started: time.Now()},
			}))
			if proto == "HTTP/2.0" {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer func() { h.Close(); srv.Close(); st.Close() }()
			if _, err := st.Append(t.Context(), store.AppendRequest{Drafts: []store.Draft{{Info: "before"}}}); err != nil {
				t.Fatal(err)
			}

			resp, err := srv.Client().Get(srv.URL + "/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Proto != proto {
				t.Fatalf("stream over %s, want %s", resp.Proto, proto)
			}
			// Wait until the stream is live (its snapshot sent), then
			// end it.
			buf := make([]byte, 4096)
			var got strings.Builder
			for !strings.Contains(got.String(), "id: 1\n") || !strings.HasSuffix(got.String(), "\n\n") {
				n, err := resp.Body.Read(buf)
				got.Write(buf[:n])
				if err != nil {
					t.Fatalf("reading the snapshot: %v (got %q)", err, got.String())
				}
			}
			// Subscribed before the snapshot. Over HTTP/1.1 the hand-over
			// to the takeover writer may or may not be done yet: either
			// way the stream must end the same.
			for h.Subscribers() == 0 {
				time.Sleep(time.Millisecond)
			}
			h.EndAll(hub.ErrReset)

			done := make(chan error, 1)
			go func() {
				rest, err := io.ReadAll(resp.Body)
				got.Write(rest)
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("stream ended with %v, want a clean end", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("stream still open 5 s after EndAll")
			}
			if body := got.String(); !strings.HasSuffix(body, "\n\n"+sse.ResetFrame) {
				t.Fatalf("stream ended with %q, want the reset frame %q last", body[max(0, len(body)-40):], sse.ResetFrame)
			}
			// An HTTP/2 stream cannot be taken over: it is counted, as
			// its metric shows; an HTTP/1.1 one is taken.
			if tw != nil {
				want := uint64(0)
				if proto == "HTTP/2.0" {
					want = 1
				}
				if n := tw.NotTakenOver(); n != want {
					t.Fatalf("%d streams counted as not taken over, want %d", n, want)
				}
			}
		})
	}
}

package handlers_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"factstream/handlers"
	"factstream/hub"
	"factstream/hub/fanout"
	"factstream/middleware"
	"factstream/store"
	"factstream/store/memory"
)

// BenchmarkPublish measures what factstream adds to net/http for one
// POST /fact: the middleware, decoding, the memory store and the reply, as
// app.Run wires them (metrics on, no token, no rate limit). The network and
// net/http's own request cycle are left out; bench/ measures those.
//
// Besides ns/op (wall time) it reports cpu-ns/op, the process's CPU time
// per publish, which other processes on a shared machine do not inflate.
func BenchmarkPublish(b *testing.B) {
	h := hub.New(hub.Options{Buffer: 64, MaxSubscribers: 10})
	st := memory.New(store.Options{OnAppend: func(fs []store.Fact) {
		if h.Subscribers() > 0 { // as app.Run does
			h.Publish(fanout.Events(fs))
		}
	}})
	b.Cleanup(func() {
		h.Close()
		st.Close()
	})
	metrics, err := middleware.NewMetrics(prometheus.NewRegistry(), h, st)
	if err != nil {
		b.Fatal(err)
	}
	routes := handlers.Routes(handlers.Deps{
		Logger:   slog.New(slog.DiscardHandler),
		Store:    st,
		Hub:      h,
		Stream:   handlers.StreamOptions{Retry: 3 * time.Second, Heartbeat: time.Minute, WriteTimeout: time.Second, SnapshotMax: 100},
		MaxBody:  64 << 10,
		Instance: handlers.Instance{ID: "b", StoreKind: "memory", Version: "bench", Started: time.Now()},
		Metrics:  metrics,
	})
	const body = `{"info":"fact 12345 sent at 1763750000000000000","source":"https://bench.example/pub/3"}`
	req := httptest.NewRequest(http.MethodPost, "/fact", nil)
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "127.0.0.2:40000"
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		req.Body = http.NoBody
		r := req.Clone(req.Context())
		r.Body = readCloser{strings.NewReader(body)}
		r.ContentLength = int64(len(body))
		w := httptest.NewRecorder()
		routes.ServeHTTP(w, r)
		if w.Code != http.StatusCreated {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if cpu := cpuTime() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func init() { gin.SetMode(gin.TestMode) }

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

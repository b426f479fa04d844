package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"factstream/app"
	"factstream/internal/redistest"
)

// scrape fetches /metrics and parses it as the Prometheus text format.
func scrape(tb testing.TB, base string) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		tb.Fatalf("GET /metrics = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return families
}

// metricValue is the value of the series of name whose labels include
// labels (name=value pairs), or -1 when there is none.
func metricValue(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := families[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// waitMetric polls /metrics until the series has the value want.
func waitMetric(tb testing.TB, base string, want float64, name string, labels ...string) {
	tb.Helper()
	eventually(tb, 5*time.Second, fmt.Sprintf("%s%v to be %v", name, labels, want), func() bool {
		return metricValue(scrape(tb, base), name, labels...) == want
	})
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	cfg := testConfig(t)
	cfg.ClientBuffer = 16 // so a stream that stops reading is dropped soon
	srv := startServer(t, cfg)

	start := scrape(t, srv.URL)
	for name, want := range map[string]float64{
		"factstream_streams":                  0,
		"factstream_facts_total":              0,
		"factstream_events_sent_total":        0,
		"factstream_slow_disconnects_total":   0,
		"factstream_publish_duration_seconds": 0,
	} {
		if got := metricValue(start, name); got != want {
			t.Errorf("%s = %v at start, want %v", name, got, want)
		}
	}
	for _, runtime := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes"} {
		if _, ok := start[runtime]; !ok {
			t.Errorf("%s missing: the Go runtime and process collectors are not registered", runtime)
		}
	}

	s := openStream(t, srv.URL+"/events", nil)
	waitMetric(t, srv.URL, 1, "factstream_streams")
	f := postFact(t, srv.URL, "counted")
	if got := nextFact(t, s); got.ID != f.ID {
		t.Fatalf("streamed %+v", got)
	}
	waitMetric(t, srv.URL, 1, "factstream_facts_total")
	waitMetric(t, srv.URL, 1, "factstream_events_sent_total")
	waitMetric(t, srv.URL, 1, "factstream_publish_duration_seconds")

	if code, body := postJSON(t, srv.URL+"/fact", map[string]string{"info": ""}, nil); code != http.StatusBadRequest {
		t.Fatalf("empty info = %d %s", code, body)
	}
	waitMetric(t, srv.URL, 1, "factstream_rejected_requests_total", "reason", "invalid-fact")
	waitMetric(t, srv.URL, 1, "factstream_publish_duration_seconds") // failures are not timed

	s.Close()
	waitMetric(t, srv.URL, 0, "factstream_streams")

	// A stream that stops reading is dropped as slow.
	openUnreadStream(t, srv)
	waitMetric(t, srv.URL, 1, "factstream_streams")
	big := strings.Repeat("x", 4000)
	posted := 1
	for ; metricValue(scrape(t, srv.URL), "factstream_slow_disconnects_total") == 0; posted++ {
		if posted > 5000 {
			t.Fatal("5,000 facts of 4 KB and the stream that never reads was not dropped")
		}
		if code, body := postJSON(t, srv.URL+"/fact", map[string]string{"info": fmt.Sprintf("%d %s", posted, big)}, nil); code != http.StatusCreated {
			t.Fatalf("POST /fact = %d %s", code, body)
		}
	}
	waitMetric(t, srv.URL, 1, "factstream_slow_disconnects_total")
	waitMetric(t, srv.URL, 0, "factstream_streams")
	waitMetric(t, srv.URL, float64(posted), "factstream_facts_total")
}

// TestStoreCommitMetrics checks the group-commit counters of a bbolt store
// and a Redis store, which the memory store does not have.
func TestStoreCommitMetrics(t *testing.T) {
	boltCfg := testConfig(t)
	boltCfg.Store = "bolt:" + t.TempDir() + "/facts.db"
	redisCfg := testConfig(t)
	redisCfg.Store = redistest.Start(t).URL()
	for name, cfg := range map[string]app.Config{"bolt": boltCfg, "redis": redisCfg} {
		srv := startServer(t, cfg)
		for i := range 3 {
			postFact(t, srv.URL, fmt.Sprint("committed ", i))
		}
		m := scrape(t, srv.URL)
		if got := metricValue(m, "factstream_store_committed_appends_total"); got != 3 {
			t.Errorf("%s: committed appends = %v, want 3", name, got)
		}
		if got := metricValue(m, "factstream_store_commits_total"); got < 1 || got > 3 {
			t.Errorf("%s: commits = %v, want 1 to 3", name, got)
		}
	}

	mem := startServer(t, testConfig(t))
	if _, ok := scrape(t, mem.URL)["factstream_store_commits_total"]; ok {
		t.Error("the memory store reports commits")
	}
}

package middleware

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"factstream/hub"
	"factstream/store"
)

type fakeHub struct{ stats hub.Stats }

func (f *fakeHub) Stats() hub.Stats { return f.stats }

type fakeStore struct {
	count uint64
	err   error
}

func (f *fakeStore) Stats(context.Context) (store.Stats, error) {
	return store.Stats{Count: f.count, LastSeq: f.count}, f.err
}

// gather returns the registry's metrics by name.
func gather(tb testing.TB, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily, len(families))
	for _, f := range families {
		out[f.GetName()] = f
	}
	return out
}

func TestMetricsReadTheHubAndStore(t *testing.T) {
	h := &fakeHub{stats: hub.Stats{Subscribers: 3, MaxSubscribers: 100, Delivered: 40, SlowDisconnects: 2}}
	st := &fakeStore{count: 7}
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg, h, st); err != nil {
		t.Fatal(err)
	}
	m := gather(t, reg)
	for name, want := range map[string]float64{
		"factstream_streams":                3,
		"factstream_max_streams":            100,
		"factstream_store_ready":            1,
		"factstream_events_sent_total":      40,
		"factstream_slow_disconnects_total": 2,
		"factstream_facts_total":            7,
	} {
		f, ok := m[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
		var got float64
		if f.GetType() == dto.MetricType_GAUGE {
			got = f.GetMetric()[0].GetGauge().GetValue()
		} else {
			got = f.GetMetric()[0].GetCounter().GetValue()
		}
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	h.stats.Subscribers = 0
	st.err = errors.New("store down")
	m = gather(t, reg)
	if got := m["factstream_streams"].GetMetric()[0].GetGauge().GetValue(); got != 0 {
		t.Errorf("factstream_streams after streams closed = %v, want 0", got)
	}
	if _, ok := m["factstream_facts_total"]; ok {
		t.Error("factstream_facts_total reported while the store cannot answer")
	}
	if got := m["factstream_store_ready"].GetMetric()[0].GetGauge().GetValue(); got != 0 {
		t.Errorf("factstream_store_ready while the store cannot answer = %v, want 0", got)
	}
}

func TestMaxStreamsOnlyWithABound(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg, &fakeHub{}, &fakeStore{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := gather(t, reg)["factstream_max_streams"]; ok {
		t.Error("factstream_max_streams reported for a hub without a bound")
	}
}

func TestMetricsCountRejectionsAndTimePublishes(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg, &fakeHub{}, &fakeStore{})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.Use(metrics.CountRejections())
	r.POST("/ok", metrics.TimePublish(), func(c *gin.Context) { c.Status(http.StatusCreated) })
	r.POST("/bad", metrics.TimePublish(), func(c *gin.Context) {
		testReject(c, Rejection{Status: http.StatusBadRequest, Code: "invalid-fact"})
	})
	for _, path := range []string{"/ok", "/ok", "/bad"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, path, nil))
	}
	m := gather(t, reg)
	if got := m["factstream_publish_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); got != 2 {
		t.Errorf("publish duration samples = %d, want 2 (successes only)", got)
	}
	rejected := m["factstream_rejected_requests_total"].GetMetric()
	if len(rejected) != 1 || rejected[0].GetLabel()[0].GetValue() != "invalid-fact" || rejected[0].GetCounter().GetValue() != 1 {
		t.Errorf("rejected = %v, want invalid-fact 1", rejected)
	}
	if _, err := NewMetrics(reg, &fakeHub{}, &fakeStore{}); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}

// The removal counter shows both reasons from the start, at 0, and counts
// what the store reports.
func TestFactsRemovedCountsByReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	removed := NewFactsRemoved()
	if err := removed.Register(reg); err != nil {
		t.Fatal(err)
	}
	values := func() map[string]float64 {
		out := map[string]float64{}
		for _, m := range gather(t, reg)["factstream_facts_removed_total"].GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
		return out
	}
	if got := values(); len(got) != 2 || got["retention"] != 0 || got["deleted"] != 0 {
		t.Fatalf("before any removal: %v, want both reasons at 0", got)
	}
	removed.Add(store.RemovedRetention, 5)
	removed.Add(store.RemovedDeleted, 1)
	removed.Add(store.RemovedRetention, 2)
	if got := values(); got["retention"] != 7 || got["deleted"] != 1 {
		t.Fatalf("counted %v, want retention 7 and deleted 1", got)
	}
}

type fakeTakeover struct{ notTaken uint64 }

func (f *fakeTakeover) NotTakenOver() uint64 { return f.notTaken }

func TestTakeoverMetricReadsTheWriter(t *testing.T) {
	tw := &fakeTakeover{}
	reg := prometheus.NewRegistry()
	if err := RegisterTakeoverMetrics(reg, tw); err != nil {
		t.Fatal(err)
	}
	tw.notTaken = 4
	m := gather(t, reg)["factstream_streams_not_taken_over_total"]
	if m == nil || m.GetMetric()[0].GetCounter().GetValue() != 4 {
		t.Fatalf("factstream_streams_not_taken_over_total = %v, want 4", m)
	}
	if err := RegisterTakeoverMetrics(reg, tw); err == nil {
		t.Fatal("registered twice on one registry")
	}
}

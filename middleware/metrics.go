package middleware

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"factstream/hub"
	"factstream/store"
)

// factsTimeout bounds the store read of a scrape: a slow store must not
// hold Prometheus' scrape until its own timeout.
const factsTimeout = 2 * time.Second

// HubStats is what the metrics read from the hub.
type HubStats interface {
	Stats() hub.Stats
}

// FactStats is what the metrics read from the store.
type FactStats interface {
	Stats(ctx context.Context) (store.Stats, error)
}

// Metrics are factstream's Prometheus metrics. Streams, events and slow
// disconnects are read from the hub's own counters at scrape time, and the
// fact count from the store, rather than counted a second time here; only
// what nothing else counts (rejections, publish latency) is recorded by
// middleware.
type Metrics struct {
	rejected *prometheus.CounterVec
	publish  prometheus.Histogram
}

// NewMetrics registers the metrics on reg. It fails if reg already holds
// metrics of the same names.
func NewMetrics(reg prometheus.Registerer, streams HubStats, facts FactStats) (*Metrics, error) {
	m := &Metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "factstream_rejected_requests_total",
			Help: "Requests answered with a problem response, by problem code (for example token-invalid, rate-limited, invalid-fact).",
		}, []string{"reason"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "factstream_publish_duration_seconds",
			Help: "Time to handle a successful POST /fact or POST /facts, from the request reaching the handler to the durable commit.",
			// From an in-memory append to an fsync on a slow disk or a
			// Redis round trip under load.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	collectors := []prometheus.Collector{
		m.rejected,
		m.publish,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "factstream_streams",
			Help: "SSE streams open on this instance.",
		}, func() float64 { return float64(streams.Stats().Subscribers) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "factstream_events_sent_total",
			Help: "Live fact events written to streams on this instance (snapshot and catch-up arrays not included).",
		}, func() float64 { return float64(streams.Stats().Delivered) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "factstream_slow_disconnects_total",
			Help: "Streams dropped because their client could not keep up: its queue overflowed, or it took no data for the write timeout.",
		}, func() float64 { return float64(streams.Stats().SlowDisconnects) }),
		factsCollector{
			facts: facts,
			desc: prometheus.NewDesc("factstream_facts_total",
				"Facts in the store (shared by every instance on the same store).", nil, nil),
			ready: prometheus.NewDesc("factstream_store_ready",
				"1 when the store answered this scrape's read, 0 when it did not: publishes, streams and /readyz then fail with 503.", nil, nil),
		},
	}
	// The bound is fixed at start: a constant, so alerts can compare
	// factstream_streams with it.
	if limit := streams.Stats().MaxSubscribers; limit > 0 {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "factstream_max_streams",
			Help: "Most SSE streams this instance accepts at once (--max-clients); more get 503 too-many-streams.",
		}, func() float64 { return float64(limit) }))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// CommitStats is a store that groups appends into commits: transactions
// (bbolt) or script calls (Redis).
type CommitStats interface {
	// Commits returns the commits made and the appends they held, since
	// the store was opened.
	Commits() (commits, appends uint64)
}

// RegisterCommitMetrics adds the group-commit counters to reg. Appends
// divided by commits is how many concurrent publishes shared each fsync
// (bbolt) or each round trip to Redis.
func RegisterCommitMetrics(reg prometheus.Registerer, s CommitStats) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "factstream_store_commits_total",
			Help: "Commits the store made: bbolt write transactions (each fsynced) or Redis append script calls (each one round trip).",
		}, func() float64 { n, _ := s.Commits(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "factstream_store_committed_appends_total",
			Help: "Publish requests those commits held; divided by factstream_store_commits_total, the appends that shared each fsync or round trip.",
		}, func() float64 { _, n := s.Commits(); return float64(n) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// TakeoverStats is the takeover writer's count of streams it could not
// take over.
type TakeoverStats interface {
	NotTakenOver() uint64
}

// RegisterTakeoverMetrics adds the takeover writer's counter to reg. A
// stream that cannot be taken over (HTTP/2, TLS, a proxy's HTTP/1.0, a
// writer that refuses the hijack) keeps a goroutine and its buffers: the
// count tells why memory per stream is higher than expected.
func RegisterTakeoverMetrics(reg prometheus.Registerer, s TakeoverStats) error {
	return reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "factstream_streams_not_taken_over_total",
		Help: "Streams the takeover writer could not take over (HTTP/2, TLS, HTTP/1.0, a refused hijack): each kept a goroutine of its own.",
	}, func() float64 { return float64(s.NotTakenOver()) }))
}

// CountRejections counts every response that carries a problem code (set
// with SetProblem by whoever wrote the problem).
func (m *Metrics) CountRejections() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if code := ProblemOf(c); code != "" {
			m.rejected.WithLabelValues(code).Inc()
		}
	}
}

// TimePublish observes the duration of the publish handler after it. Only
// successes are observed: failures are mostly fast validation errors that
// would hide the latency of commits, and they are counted as rejections.
func (m *Metrics) TimePublish() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		if s := c.Writer.Status(); s >= 200 && s < 300 {
			m.publish.Observe(time.Since(start).Seconds())
		}
	}
}

// factsCollector reads the fact count at scrape time. When the store cannot
// answer, the count is left out of that scrape rather than reported with a
// made-up value, and the store is reported not ready.
type factsCollector struct {
	facts FactStats
	desc  *prometheus.Desc
	ready *prometheus.Desc
}

func (f factsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.desc
	ch <- f.ready
}

func (f factsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), factsTimeout)
	defer cancel()
	st, err := f.facts.Stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(f.ready, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(f.ready, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(f.desc, prometheus.CounterValue, float64(st.Count))
}

// FactsRemoved counts the facts this instance removed from the store, by
// reason. It exists before the store opens (which may remove facts at
// once), so it is made apart from Metrics; its Add is the store's
// Options.OnRemove.
type FactsRemoved struct {
	vec *prometheus.CounterVec
}

// NewFactsRemoved returns the counter, with every reason at 0.
func NewFactsRemoved() *FactsRemoved {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "factstream_facts_removed_total",
		Help: "Facts this instance removed from the store: by retention (retention_facts, retention_age) or deleted through the admin API.",
	}, []string{"reason"})
	for _, r := range []store.RemovalReason{store.RemovedRetention, store.RemovedDeleted} {
		vec.WithLabelValues(string(r))
	}
	return &FactsRemoved{vec: vec}
}

// Add counts n facts removed for reason.
func (f *FactsRemoved) Add(reason store.RemovalReason, n int) {
	f.vec.WithLabelValues(string(reason)).Add(float64(n))
}

// Register adds the counter to reg.
func (f *FactsRemoved) Register(reg prometheus.Registerer) error {
	return reg.Register(f.vec)
}

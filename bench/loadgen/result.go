//go:build linux

package main

import (
	"fmt"
	"io"
	"time"
)

// Result is one run's figures, written as JSON for the report.
type Result struct {
	Scenario        string  `json:"scenario"`
	Name            string  `json:"name"`
	Store           string  `json:"store"`
	Reader          string  `json:"reader"`
	Variant         string  `json:"variant,omitempty"` // server flags unlike the other runs'
	Subscribers     int     `json:"subscribers"`
	Facts           int64   `json:"facts"`
	TargetRate      float64 `json:"target_rate"`
	Publishers      int     `json:"publishers"`
	DurationSeconds float64 `json:"duration_seconds"`

	// Subscribe phase: from the first connect to the last snapshot.
	Ready          int64   `json:"ready"`
	ConnectFailed  int64   `json:"connect_failed"`
	ConnectSeconds float64 `json:"connect_seconds"`
	RSSBeforeKiB   int64   `json:"rss_before_kib"`
	RSSAfterKiB    int64   `json:"rss_after_kib"`   // Settle after the last snapshot
	RSSIdleKiB     int64   `json:"rss_idle_kib"`    // Idle after the last snapshot, if read
	IdleSeconds    float64 `json:"idle_seconds"`    // when RSSPerConnKB was read
	RSSPerConnKB   float64 `json:"rss_per_conn_kb"` // from the last reading; 1 KB = 1000 bytes
	Connect        CPU     `json:"connect_cpu"`

	// Publish phase: from the first publish to the last delivery.
	Published       int64   `json:"published"`
	PublishFailures int64   `json:"publish_failures"`
	FirstError      string  `json:"first_error,omitempty"`
	AchievedRate    float64 `json:"achieved_rate"`
	PublishP50Ms    float64 `json:"publish_p50_ms"`
	PublishP99Ms    float64 `json:"publish_p99_ms"`
	PublishMaxMs    float64 `json:"publish_max_ms"`

	Expected            int64   `json:"expected_deliveries"`
	Deliveries          int64   `json:"deliveries"`
	Missing             int64   `json:"missing"`
	Duplicates          int64   `json:"duplicates"`
	Unacked             int64   `json:"unacked_received"` // received, but its POST got no 201
	Unknown             int64   `json:"unknown_events"`
	SeqGaps             int64   `json:"seq_gaps"`
	StreamsEnded        int64   `json:"streams_ended"` // closed by the server during the run
	DeliverySeconds     float64 `json:"delivery_seconds"`
	DeliveriesPerSecond float64 `json:"deliveries_per_second"`
	LatencyP50Ms        float64 `json:"latency_p50_ms"`
	LatencyP99Ms        float64 `json:"latency_p99_ms"`
	LatencyMaxMs        float64 `json:"latency_max_ms"`
	Deliver             CPU     `json:"deliver_cpu"`
	ServerCPUPerMillion float64 `json:"server_cpu_s_per_million"`

	// The group-commit counters of the instance publishes went to, read
	// from its /metrics after the run (zero when it has none).
	StoreCommits int64 `json:"store_commits,omitempty"`
	StoreAppends int64 `json:"store_committed_appends,omitempty"`

	acked []uint64
}

func newResult(sc scenario) *Result {
	return &Result{
		Scenario: sc.Scenario, Name: sc.Name, Store: sc.Store, Reader: sc.Reader, Variant: sc.Variant,
		Subscribers: sc.Subs, Facts: sc.Facts, TargetRate: sc.Rate, Publishers: sc.Pubs,
		DurationSeconds: sc.Duration.Seconds(),
	}
}

// setRSS records the server's RSS before the first connection and the
// readings after the last snapshot; the per-stream figure uses the last.
func (r *Result) setRSS(before int64, after []int64) {
	r.RSSBeforeKiB = before
	if len(after) == 0 {
		return
	}
	r.RSSAfterKiB = after[0]
	last := after[len(after)-1]
	if len(after) > 1 {
		r.RSSIdleKiB = last
	}
	if r.Ready > 0 {
		r.RSSPerConnKB = float64(last-before) * 1024 / 1000 / float64(r.Ready)
	}
}

func (r *Result) setPublish(pr *publishResult) {
	r.Published = pr.count.Load()
	r.PublishFailures = pr.failures.Load()
	if s, ok := pr.firstErr.Load().(string); ok {
		r.FirstError = s
	}
	r.AchievedRate = pr.rate()
	r.PublishP50Ms = ms(pr.latency.Quantile(0.50))
	r.PublishP99Ms = ms(pr.latency.Quantile(0.99))
	r.PublishMaxMs = ms(pr.latency.Max())
}

func (r *Result) setDeliveries(fl *fleet, pr *publishResult) {
	r.Deliveries = fl.deliveries.Load()
	r.StreamsEnded = fl.ended.Load()
	r.Expected = fl.snapshots.Load() * r.Published
	if last := fl.lastRecv.Load(); last > 0 && r.Deliveries > 0 {
		r.DeliverySeconds = time.Duration(last - pr.start.UnixNano()).Seconds()
		r.DeliveriesPerSecond = float64(r.Deliveries) / r.DeliverySeconds
	}
	r.LatencyP50Ms = ms(fl.latency.Quantile(0.50))
	r.LatencyP99Ms = ms(fl.latency.Quantile(0.99))
	r.LatencyMaxMs = ms(fl.latency.Max())
	if r.Deliveries > 0 {
		r.ServerCPUPerMillion = r.Deliver.ServerSeconds / (float64(r.Deliveries) / 1e6)
	}
}

// checkDeliveries counts, over every subscriber that got its snapshot,
// the acknowledged facts it missed and what it received more than once.
func (r *Result) checkDeliveries(subs []*subscriber, fl *fleet) {
	r.StreamsEnded = fl.ended.Load()
	for _, s := range subs {
		if !s.snapshot {
			continue
		}
		if r.acked != nil {
			missing, unacked := s.missing(r.acked)
			r.Missing += missing
			r.Unacked += unacked
		}
		r.Duplicates += s.duplicates
		r.Unknown += s.unknown
		r.SeqGaps += s.gaps
	}
}

// summary prints the figures a person running one scenario looks at.
func (r *Result) summary(w io.Writer) {
	fmt.Fprintf(w, "%s (%s, %s reader):\n", r.Name, r.Store, r.Reader)
	if r.Subscribers > 0 {
		later := ""
		if r.RSSIdleKiB > 0 {
			later = fmt.Sprintf(", later %+d KiB", r.RSSIdleKiB-r.RSSBeforeKiB)
		}
		fmt.Fprintf(w, "  subscribers %d ready, %d failed, in %.2fs; server RSS %+d KiB%s (%.1f KB/conn)\n",
			r.Ready, r.ConnectFailed, r.ConnectSeconds, r.RSSAfterKiB-r.RSSBeforeKiB, later, r.RSSPerConnKB)
		fmt.Fprintf(w, "  connect cpu: server %.2fs (core %.0f%%), generator %.2fs (core %.0f%%)\n",
			r.Connect.ServerSeconds, r.Connect.ServerCoreBusy, r.Connect.GeneratorSeconds, r.Connect.GenCoreBusy)
	}
	if r.Published+r.PublishFailures == 0 {
		return
	}
	fmt.Fprintf(w, "  published %d (%d failed %s) at %.0f/s; publish p50 %.2fms p99 %.2fms max %.2fms\n",
		r.Published, r.PublishFailures, r.FirstError, r.AchievedRate, r.PublishP50Ms, r.PublishP99Ms, r.PublishMaxMs)
	if r.Subscribers > 0 {
		fmt.Fprintf(w, "  deliveries %d/%d in %.3fs = %.0f/s; latency p50 %.2fms p99 %.2fms max %.2fms\n",
			r.Deliveries, r.Expected, r.DeliverySeconds, r.DeliveriesPerSecond, r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
		fmt.Fprintf(w, "  missing %d, duplicates %d, unacked %d, unknown %d, seq gaps %d, streams ended %d\n",
			r.Missing, r.Duplicates, r.Unacked, r.Unknown, r.SeqGaps, r.StreamsEnded)
	}
	fmt.Fprintf(w, "  publish cpu: server %.2fs (core %.0f%%), generator %.2fs (core %.0f%%) over %.2fs; server %.2f cpu-s per million deliveries\n",
		r.Deliver.ServerSeconds, r.Deliver.ServerCoreBusy, r.Deliver.GeneratorSeconds, r.Deliver.GenCoreBusy, r.Deliver.WallSeconds, r.ServerCPUPerMillion)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

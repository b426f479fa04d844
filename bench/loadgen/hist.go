//go:build linux

package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram buckets are log-linear: values below 2^subBits nanoseconds have
// a bucket each, and every further power of two is split into 2^(subBits-1)
// buckets, so a reported quantile is within about 1.6% of the true value
// while the histogram stays a fixed 15 KiB however many values it counts.
const (
	subBits    = 6
	subBuckets = 1 << (subBits - 1)
	numBuckets = 1<<subBits + (64-subBits)*subBuckets
)

// histogram counts durations. It is safe for concurrent use: recording is
// one atomic add, so readers on many goroutines can share one.
type histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
}

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // v>>shift is in [2^(subBits-1), 2^subBits)
	return 1<<subBits + (shift-1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketValue is the middle of bucket i.
func bucketValue(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	i -= 1 << subBits
	shift := i/subBuckets + 1
	low := uint64(i%subBuckets+subBuckets) << shift
	return low + (uint64(1)<<shift)/2
}

// Record counts one duration; negative ones (clock steps) count as zero.
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns how many durations were recorded.
func (h *histogram) Count() uint64 { return h.total.Load() }

// Max returns the largest duration recorded, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the duration below which a fraction q of the recorded
// ones lie, 0 when none was recorded.
func (h *histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = min(max(rank, 1), total)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(bucketValue(i)), h.Max())
		}
	}
	return h.Max()
}

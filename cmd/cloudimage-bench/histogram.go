package main

import (
	"math"
	"time"
)

// histogram counts latencies in buckets 1% wide, from 1µs to about a
// minute, so that its memory does not grow with the number of requests.
// A quantile is exact to within the bucket's 1%.
type histogram struct {
	counts [histBuckets]int64
	n      int64
	max    time.Duration
}

const (
	histGrowth  = 1.01
	histBuckets = 1800 // 1.01^1800 µs is about 18 hours
)

var logGrowth = math.Log(histGrowth)

func (h *histogram) add(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = min(int(math.Log(us)/logGrowth)+1, histBuckets-1)
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the upper bound of the bucket that holds the q-th
// latency, never more than the largest seen.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			upper := time.Duration(math.Pow(histGrowth, float64(i)) * float64(time.Microsecond))
			return min(upper, h.max)
		}
	}
	return h.max
}

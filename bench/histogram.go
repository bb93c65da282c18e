package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram counts latencies in log-linear buckets, HdrHistogram style:
// every power of two is split into 2^subBits equal buckets, so a quantile
// read from it is at most 1/128 (0.8%) above the true sample and never
// below it, whatever the range. Recording is one atomic add, so every
// worker of a scenario can share one Histogram without a lock.
type Histogram struct {
	counts [numBuckets]atomic.Int64
	n      atomic.Int64
	sum    atomic.Int64 // nanoseconds
	min    atomic.Int64 // nanoseconds; math.MaxInt64 while empty
	max    atomic.Int64 // nanoseconds
}

const (
	subBits  = 7
	subCount = 1 << subBits
	// maxShift bounds the range: values from 2^(maxShift+subBits+1) ns
	// (about 69 s) up share the last bucket; Max stays exact.
	maxShift   = 28
	numBuckets = (maxShift + 2) * subCount
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf is the index of the bucket that counts v nanoseconds.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits
	if shift > maxShift {
		return numBuckets - 1
	}
	return (shift+1)*subCount + int(v>>uint(shift)) - subCount
}

// bucketLow is the smallest value bucket i counts.
func bucketLow(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := uint(i/subCount - 1)
	return uint64(i%subCount+subCount) << shift
}

// bucketHigh is the largest value bucket i counts.
func bucketHigh(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := uint(i/subCount - 1)
	mant := uint64(i%subCount + subCount)
	return (mant+1)<<shift - 1
}

// Record counts one latency; a negative one counts as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count is the number of recorded latencies.
func (h *Histogram) Count() int64 { return h.n.Load() }

// Max is the largest recorded latency, exact.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min is the smallest recorded latency, exact; 0 when empty.
func (h *Histogram) Min() time.Duration {
	if h.n.Load() == 0 {
		return 0
	}
	return time.Duration(h.min.Load())
}

// Mean is the average recorded latency.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the latency at or below which a fraction q (0..1) of
// the samples lie: the upper edge of the bucket holding the sample of rank
// ceil(q*n), capped at Max. It is never below that sample and at most
// 1/128 above it. Read it after recording stopped.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var cum int64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if cum >= rank {
			if i == numBuckets-1 {
				return h.Max() // the overflow bucket has no upper edge of its own
			}
			return min(time.Duration(bucketHigh(i)), h.Max())
		}
	}
	return h.Max()
}

// Merge adds every count of o into h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n.Load() == 0 {
		return
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.min.Load(); m < h.min.Load() {
		h.min.Store(m)
	}
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

// Bar is one row of the printed latency histogram: the samples above the
// previous row's UpTo and at most this one's.
type Bar struct {
	UpTo time.Duration `json:"-"`
	// LeMS is UpTo in milliseconds; null on the last row, which has no
	// upper bound.
	LeMS  *float64 `json:"le_ms"`
	Count int64    `json:"count"`
}

// barEdges are the rows of the printed histogram: a 1-2-5 log scale from
// 50 µs to 10 s; a last row catches everything above.
var barEdges = func() []time.Duration {
	var out []time.Duration
	for d := 10 * time.Microsecond; d <= 10*time.Second; d *= 10 {
		out = append(out, d, 2*d, 5*d)
	}
	return append(out[2:], time.Duration(math.MaxInt64))
}()

// Bars folds the buckets into barEdges rows, from the first row with a
// sample to the last. A bucket goes to the row that holds its lowest
// value, so a row may hold samples up to 1/128 above its edge.
func (h *Histogram) Bars() []Bar {
	rows := make([]Bar, len(barEdges))
	for i, e := range barEdges {
		rows[i].UpTo = e
		if i < len(barEdges)-1 {
			ms := float64(e) / float64(time.Millisecond)
			rows[i].LeMS = &ms
		}
	}
	r := 0
	for i := range h.counts {
		c := h.counts[i].Load()
		if c == 0 {
			continue
		}
		low := time.Duration(bucketLow(i))
		for r < len(rows)-1 && low > rows[r].UpTo {
			r++
		}
		rows[r].Count += c
	}
	first, last := -1, -1
	for i, row := range rows {
		if row.Count > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	return rows[first : last+1]
}

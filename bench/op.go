package bench

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Op counts one kind of request of a scenario (checkout, heartbeat, ...):
// the latency of every successful one, and failures by error code. It is
// safe for concurrent use; workers share one Op.
type Op struct {
	Name string
	hist *Histogram
	ok   atomic.Int64
	nerr atomic.Int64
	// started and stopped bound the time the Op's throughput is over.
	started time.Time
	stopped atomic.Int64 // Unix ns; 0 while running

	mu   sync.Mutex
	errs map[string]int64
}

// NewOp starts counting an op now.
func NewOp(name string) *Op {
	return &Op{Name: name, hist: NewHistogram(), started: time.Now(), errs: map[string]int64{}}
}

// Done records the outcome of one request that began at start: code ""
// is a success (its latency goes into the histogram), anything else an
// error counted under that code. Failures stay out of the histogram: a fast
// refusal would otherwise flatter the latency of the work that was done.
func (o *Op) Done(start time.Time, code string) {
	if code == codeCanceled {
		return // cut off by the end of the scenario: neither success nor error
	}
	if code == "" {
		o.hist.Record(time.Since(start))
		o.ok.Add(1)
		return
	}
	o.Fail(code)
}

// Fail counts one error under code.
func (o *Op) Fail(code string) {
	o.nerr.Add(1)
	o.mu.Lock()
	o.errs[code]++
	o.mu.Unlock()
}

// Stop ends the Op's throughput window (the first call wins).
func (o *Op) Stop() { o.stopped.CompareAndSwap(0, time.Now().UnixNano()) }

// OK is the number of successes so far.
func (o *Op) OK() int64 { return o.ok.Load() }

// Errors is the number of failures so far.
func (o *Op) Errors() int64 { return o.nerr.Load() }

// Histogram is the latency histogram of the successes.
func (o *Op) Histogram() *Histogram { return o.hist }

// ErrorCodes returns a copy of the failures by code.
func (o *Op) ErrorCodes() map[string]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]int64, len(o.errs))
	for k, v := range o.errs {
		out[k] = v
	}
	return out
}

// Report summarises the op; call it once the workers stopped.
func (o *Op) Report() OpReport {
	o.Stop()
	elapsed := time.Duration(o.stopped.Load() - o.started.UnixNano())
	h := o.hist
	r := OpReport{
		Name:     o.Name,
		OK:       o.OK(),
		Failed:   o.Errors(),
		ElapsedS: elapsed.Seconds(),
		Latency: Latency{
			Min: ms(h.Min()), Mean: ms(h.Mean()), P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)),
			P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)), Max: ms(h.Max()),
		},
		Histogram: h.Bars(),
	}
	if elapsed > 0 {
		r.PerSecond = float64(r.OK) / elapsed.Seconds()
	}
	if codes := o.ErrorCodes(); len(codes) > 0 {
		r.Errors = codes
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sortedCodes lists the codes of m, the most frequent first.
func sortedCodes(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if m[out[i]] != m[out[j]] {
			return m[out[i]] > m[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

package main

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"
)

// A backend does the measured job; every backend is driven and timed by
// the same loop below, so their numbers compare.
type backend interface {
	// Worker returns the state of worker id (one goroutine each).
	Worker(id int) worker
	Close() error
}

// worker does one request per Step. Seat backends alternate acquire and
// release; Drain releases what the worker still holds when a run ends.
type worker interface {
	// Step does one request and names its kind ("apply", "acquire",
	// "release"); err is the request's failure, with a short code.
	Step(ctx context.Context) (kind string, err error)
	Drain(ctx context.Context)
}

// codedError is a failure with a short, countable code.
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.code + ": " + e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func codeOf(err error) string {
	if ce, ok := err.(*codedError); ok {
		return ce.code
	}
	return "error"
}

// Cell is the result of one backend at one concurrency.
type Cell struct {
	Backend     string                  `json:"backend"`
	Concurrency int                     `json:"concurrency"`
	Seconds     float64                 `json:"seconds"`
	Ops         int64                   `json:"ops"`
	OpsPerSec   float64                 `json:"ops_per_sec"`
	Errors      map[string]int64        `json:"errors,omitempty"`
	Latency     map[string]LatencyStats `json:"latency_ms"`
	// Extra holds backend-specific counts (etcd: CAS retries).
	Extra map[string]int64 `json:"extra,omitempty"`
	// CPUBusy is the machine's busy CPU share during the cell, in percent
	// of all cores, from /proc/stat (every process counts).
	CPUBusy float64 `json:"cpu_busy_percent,omitempty"`
}

// LatencyStats are the percentiles of one kind of request, in ms.
type LatencyStats struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// samples is one worker's record; workers never share one.
type samples struct {
	byKind map[string][]time.Duration
	errors map[string]int64
	ops    int64
}

// measure runs c workers of b for d and returns what they did. Every
// successful request counts as an op and its latency is kept; failed
// requests are counted by code. When the time is up each worker finishes
// its request in flight and releases what it holds (not timed).
func measure(b backend, name string, c int, d time.Duration) Cell {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	recs := make([]*samples, c)
	var wg sync.WaitGroup
	b0, t0, cpuOK := cpuTimes()
	start := time.Now()
	var end time.Time
	var endMu sync.Mutex
	for i := 0; i < c; i++ {
		w := b.Worker(i)
		rec := &samples{byKind: map[string][]time.Duration{}, errors: map[string]int64{}}
		recs[i] = rec
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t := time.Now()
				// The request itself is not cut by the window's end: it
				// runs to its answer so that every op counted is whole.
				kind, err := w.Step(context.WithoutCancel(ctx))
				if err != nil {
					rec.errors[kind+":"+codeOf(err)]++
					continue
				}
				rec.byKind[kind] = append(rec.byKind[kind], time.Since(t))
				rec.ops++
			}
			endMu.Lock()
			if now := time.Now(); now.After(end) {
				end = now
			}
			endMu.Unlock()
			dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
			w.Drain(dctx)
			dcancel()
		}()
	}
	wg.Wait()
	elapsed := end.Sub(start)
	cell := Cell{Backend: name, Concurrency: c, Seconds: elapsed.Seconds(),
		Errors: map[string]int64{}, Latency: map[string]LatencyStats{}}
	if b1, t1, ok := cpuTimes(); ok && cpuOK {
		// Includes the drain; it is short next to the window.
		cell.CPUBusy = cpuBusyPercent(b0, t0, b1, t1)
	}
	all := map[string][]time.Duration{}
	for _, r := range recs {
		cell.Ops += r.ops
		for k, n := range r.errors {
			cell.Errors[k] += n
		}
		for k, ds := range r.byKind {
			all[k] = append(all[k], ds...)
		}
	}
	for k, ds := range all {
		cell.Latency[k] = stats(ds)
	}
	if elapsed > 0 {
		cell.OpsPerSec = float64(cell.Ops) / elapsed.Seconds()
	}
	if len(cell.Errors) == 0 {
		cell.Errors = nil
	}
	return cell
}

// stats sorts ds and reads its percentiles (nearest rank).
func stats(ds []time.Duration) LatencyStats {
	if len(ds) == 0 {
		return LatencyStats{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return LatencyStats{N: len(ds), P50: ms(percentile(ds, 50)), P99: ms(percentile(ds, 99)),
		P999: ms(percentile(ds, 99.9)), Max: ms(ds[len(ds)-1])}
}

// percentile is the nearest-rank percentile of sorted ds.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose: stats sorts
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := stats(ds)
	if s.N != 100 || s.P50 != 50 || s.P99 != 99 || s.P999 != 100 || s.Max != 100 {
		t.Fatalf("stats = %+v, want n 100, p50 50, p99 99, p999 100, max 100", s)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Fatalf("percentile of one sample = %v", got)
	}
}

// seatFake alternates acquire and release like the seat backends; every
// third acquire fails. It counts what the cluster would hold.
type seatFake struct {
	held, maxHeld, drained atomic.Int64
}

type seatFakeWorker struct {
	f       *seatFake
	holding bool
	tries   int
}

func (f *seatFake) Worker(int) worker { return &seatFakeWorker{f: f} }
func (f *seatFake) Close() error      { return nil }

func (w *seatFakeWorker) Step(context.Context) (string, error) {
	time.Sleep(time.Millisecond)
	if w.holding {
		w.holding = false
		w.f.held.Add(-1)
		return "release", nil
	}
	w.tries++
	if w.tries%3 == 0 {
		return "acquire", &codedError{"no_seats_available", errors.New("full")}
	}
	w.holding = true
	if n := w.f.held.Add(1); n > w.f.maxHeld.Load() {
		w.f.maxHeld.Store(n)
	}
	return "acquire", nil
}

func (w *seatFakeWorker) Drain(context.Context) {
	if w.holding {
		w.holding = false
		w.f.held.Add(-1)
		w.f.drained.Add(1)
	}
}

func TestMeasureCountsOpsErrorsAndDrains(t *testing.T) {
	f := &seatFake{}
	cell := measure(f, "fake", 4, 200*time.Millisecond)
	acq, rel := cell.Latency["acquire"], cell.Latency["release"]
	if cell.Ops == 0 || int64(acq.N+rel.N) != cell.Ops {
		t.Fatalf("ops %d, acquire n %d, release n %d", cell.Ops, acq.N, rel.N)
	}
	if errs := cell.Errors["acquire:no_seats_available"]; errs == 0 || int64(acq.N) < errs {
		t.Fatalf("errors %v with %d acquires: every third acquire fails", cell.Errors, acq.N)
	}
	if f.held.Load() != 0 {
		t.Fatalf("%d seats still held after the run: Drain was not called", f.held.Load())
	}
	if f.maxHeld.Load() > 4 {
		t.Fatalf("%d seats held at once by 4 workers", f.maxHeld.Load())
	}
	if cell.Seconds < 0.2 || cell.OpsPerSec <= 0 {
		t.Fatalf("seconds %v ops/s %v", cell.Seconds, cell.OpsPerSec)
	}
	if acq.P50 < 1 {
		t.Fatalf("acquire p50 %v ms, but every step sleeps 1 ms", acq.P50)
	}
}

func TestReportRatiosAndMissingBackend(t *testing.T) {
	runs := []Run{
		{Backend: "raft", Duration: "1s", Cells: []Cell{
			{Backend: "raft", Concurrency: 16, OpsPerSec: 1000, Latency: map[string]LatencyStats{"apply": {P50: 1, P99: 2}}},
			{Backend: "raft", Concurrency: 1, OpsPerSec: 100, Latency: map[string]LatencyStats{"apply": {P50: 1, P99: 2}}},
		}},
		{Backend: "tally", Duration: "1s", Cells: []Cell{
			{Backend: "tally", Concurrency: 16, OpsPerSec: 600, Latency: map[string]LatencyStats{"acquire": {P50: 3, P99: 9.5}},
				Errors: map[string]int64{"acquire:no_leader": 2}},
		}},
	}
	rep := merge(runs)
	if len(rep.Rows) != 2 || rep.Rows[0].Concurrency != 1 || rep.Rows[1].Concurrency != 16 {
		t.Fatalf("rows %+v, want c=1 then c=16", rep.Rows)
	}
	if r := rep.Rows[1].TallyRaft; r == nil || *r != 0.6 {
		t.Fatalf("tally/raft at c=16 = %v, want 0.6", r)
	}
	if rep.Rows[1].TallyEtcd != nil || rep.Rows[0].TallyRaft != nil {
		t.Fatal("a ratio with a side not measured must be absent")
	}
	var out bytes.Buffer
	printTable(&out, rep)
	table := out.String()
	for _, want := range []string{"|   16 | 1000 | 1.00 | 2.00 | 600 | 3.00 | 9.50 | - | - | - | 60% | - |",
		"tally c=16 errors: acquire:no_leader=2"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestCPUTimesOnLinux(t *testing.T) {
	b0, t0, ok := cpuTimes()
	if !ok {
		t.Skip("no /proc/stat here")
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) { // keep one core busy
	}
	b1, t1, _ := cpuTimes()
	if b0 > t0 || b1 < b0 || t1 <= t0 {
		t.Fatalf("readings busy %d/%d then %d/%d", b0, t0, b1, t1)
	}
	if p := cpuBusyPercent(b0, t0, b1, t1); p <= 0 || p > 100 {
		t.Fatalf("busy %.1f%% while spinning", p)
	}
}

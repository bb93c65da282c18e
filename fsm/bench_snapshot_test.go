package fsm

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
)

// Snapshot and restore at the size of the scale target: 100k licenses and
// 1M live leases (10 per license), every lease with its request id inside
// the exactly-once window and its lease.checkout audit record. The state
// is built once per test binary, through Apply, on the first benchmark
// that needs it (about a minute on 2 cores).

const (
	bigLicenses         = 100_000
	bigLeasesPerLicense = 10
)

var big struct {
	once sync.Once
	f    *FSM
	snap []byte
}

func bigState(b *testing.B) (*FSM, []byte) {
	b.Helper()
	big.once.Do(func() {
		h := newHarness(b)
		h.seed()
		mustOK(b, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", Time: t0,
			Features: &[]Feature{{Name: "cad", Seats: bigLeasesPerLicense}, {Name: "view", Seats: -1}},
			LeaseTTL: ptr(3 * 3600 * sec)}))
		for i := 0; i < bigLicenses; i++ {
			mustOK(b, h.apply(CmdCreateLicense, CreateLicense{Time: t0, License: License{
				ID: fmt.Sprintf("lic_%026d", i), Key: fmt.Sprintf("TLY-%032d", i), PolicyID: "pol1", Customer: "acme"}}))
		}
		// Log time advances 1 ms per checkout, so all 1M stay inside the
		// 1 h request window.
		for j := 0; j < bigLeasesPerLicense; j++ {
			for i := 0; i < bigLicenses; i++ {
				n := j*bigLicenses + i
				lease := benchLeaseID(n)
				mustOK(b, h.apply(CmdCheckout, Checkout{LeaseID: lease, LicenseKey: fmt.Sprintf("TLY-%032d", i),
					Feature: "cad", Holder: Holder{Machine: fmt.Sprintf("ws-%07d", n), User: "user", Hostname: "host", Process: "cad.exe"},
					RequestID: "req-" + lease, Time: t0 + int64(n)*int64(1e6)}))
			}
		}
		h.log = nil // the log itself is not part of the state
		big.f = h.f
		big.snap = snapshotBytes(b, h.f)
	})
	if big.f == nil {
		b.Fatal("building the 1M-lease state failed in an earlier benchmark")
	}
	return big.f, big.snap
}

// countingSink is a raft.SnapshotSink that only counts bytes.
type countingSink struct{ n int64 }

func (s *countingSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return len(p), nil }
func (s *countingSink) ID() string                  { return "count" }
func (s *countingSink) Cancel() error               { return nil }
func (s *countingSink) Close() error                { return nil }

// BenchmarkSnapshot1M takes and persists a snapshot of 1M leases; it
// reports the snapshot's size.
func BenchmarkSnapshot1M(b *testing.B) {
	f, _ := bigState(b)
	var size int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		var sink countingSink
		if err := snap.Persist(&sink); err != nil {
			b.Fatal(err)
		}
		snap.Release()
		size = sink.n
	}
	b.ReportMetric(float64(size), "snapshot-bytes")
	b.SetBytes(size)
}

// BenchmarkRestore1M restores that snapshot into a fresh FSM; it reports
// the snapshot's size and the heap the restored state holds.
func BenchmarkRestore1M(b *testing.B) {
	_, data := bigState(b)
	var heap uint64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		before := liveHeap()
		f := New()
		b.StartTimer()
		if err := f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		heap = liveHeap() - before
		if f.LeaseCount() != bigLicenses*bigLeasesPerLicense {
			b.Fatalf("restored %d leases", f.LeaseCount())
		}
		runtime.KeepAlive(f)
		b.StartTimer()
	}
	b.ReportMetric(float64(len(data)), "snapshot-bytes")
	b.ReportMetric(float64(heap)/(1<<20), "state-heap-MiB")
	b.SetBytes(int64(len(data)))
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

package fsm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Benchmarks of the expiry index (the B-tree of live leases by deadline)
// at 1M leases, and of the in-memory validation read.

const indexSize = 1_000_000

// benchLeaseID looks like a real lease id (prefix + 26 base32 characters).
func benchLeaseID(i int) string { return fmt.Sprintf("lse_%026d", i) }

// fullIndex returns the state's expiry index holding 1M leases with
// deadlines spread over an hour.
func fullIndex(b *testing.B) *state {
	b.Helper()
	s := newState()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < indexSize; i++ {
		s.expiry.ReplaceOrInsert(expiryItem{t0 + r.Int64N(3600*sec), benchLeaseID(i)})
	}
	return s
}

// BenchmarkExpiryIndexInsert adds a lease with a random deadline to an
// index of 1M (growing by one per op).
func BenchmarkExpiryIndexInsert(b *testing.B) {
	s := fullIndex(b)
	r := rand.New(rand.NewPCG(3, 4))
	items := make([]expiryItem, b.N)
	for i := range items {
		items[i] = expiryItem{t0 + r.Int64N(3600*sec), benchLeaseID(indexSize + i)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, it := range items {
		s.expiry.ReplaceOrInsert(it)
	}
}

// BenchmarkExpiryIndexPop takes the earliest deadline out of an index of
// 1M and puts a later one back, as a reap followed by a checkout does, so
// the index stays at 1M.
func BenchmarkExpiryIndexPop(b *testing.B) {
	s := fullIndex(b)
	items := make([]expiryItem, b.N)
	for i := range items {
		items[i] = expiryItem{t0 + 3600*sec + int64(i), benchLeaseID(indexSize + i)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, it := range items {
		if _, ok := s.expiry.DeleteMin(); !ok {
			b.Fatal("index empty")
		}
		s.expiry.ReplaceOrInsert(it)
	}
}

// BenchmarkExpiryIndexMove moves one lease's deadline (delete + insert),
// which is what a checkpoint does per lease.
func BenchmarkExpiryIndexMove(b *testing.B) {
	s := fullIndex(b)
	r := rand.New(rand.NewPCG(5, 6))
	cur := make([]expiryItem, 0, indexSize)
	s.expiry.Ascend(func(it expiryItem) bool { cur = append(cur, it); return true })
	r.Shuffle(len(cur), func(i, j int) { cur[i], cur[j] = cur[j], cur[i] })
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(cur)
		it := cur[k]
		s.expiry.Delete(it)
		it.ExpiresAt += 60 * sec
		s.expiry.ReplaceOrInsert(it)
		cur[k] = it
	}
}

// BenchmarkValidate is the stale read behind POST /v1/validate, on the FSM
// alone: a license with a counted and an uncounted feature and 1,000 live
// leases.
func BenchmarkValidate(b *testing.B) {
	h := benchFSM(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if r := h.f.Validate("key-1", "cad", "", t0); !r.Valid {
			b.Fatalf("not valid: %+v", r)
		}
	}
}

// BenchmarkValidateParallel is the same read from every CPU at once: it
// shows what the FSM's read lock costs under contention.
func BenchmarkValidateParallel(b *testing.B) {
	h := benchFSM(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := h.f.Validate("key-1", "cad", "", t0); !r.Valid {
				b.Errorf("not valid: %+v", r)
				return
			}
		}
	})
}

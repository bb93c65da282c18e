package fsm

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// benchFSM has one license whose cad feature is uncounted, so any number of
// checkouts succeed, with the requested number of live leases.
func benchFSM(b *testing.B, leases int) *harness {
	b.Helper()
	h := newHarness(b)
	h.seed()
	mustOK(b, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", Time: t0,
		Features: &[]Feature{{Name: "cad", Seats: -1}}}))
	for i := 0; i < leases; i++ {
		mustOK(b, h.apply(CmdCheckout, benchCheckout(fmt.Sprintf("pre-%d", i), i)))
	}
	return h
}

func benchCheckout(lease string, i int) Checkout {
	return Checkout{LeaseID: lease, LicenseKey: "key-1", Feature: "cad",
		Holder:    Holder{Machine: fmt.Sprintf("m%d", i%1000), User: "u"},
		RequestID: "req-" + lease, TTL: int64(i%3600+1) * sec, Time: t0 + int64(i)}
}

func encodeAll(b *testing.B, t CommandType, n int, body func(i int) any) [][]byte {
	b.Helper()
	out := make([][]byte, n)
	for i := range out {
		data, err := Encode(t, body(i))
		if err != nil {
			b.Fatal(err)
		}
		out[i] = data
	}
	return out
}

func BenchmarkApplyCheckout(b *testing.B) {
	h := benchFSM(b, 10000)
	entries := encodeAll(b, CmdCheckout, b.N, func(i int) any {
		return benchCheckout(fmt.Sprintf("b-%d", i), 10000+i)
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i, data := range entries {
		if r := h.f.Apply(&raft.Log{Index: uint64(100 + i), Data: data}).(*Result); r.Refusal != nil {
			b.Fatal(r.Refusal)
		}
	}
}

func BenchmarkApplyCheckin(b *testing.B) {
	h := benchFSM(b, b.N)
	entries := encodeAll(b, CmdCheckin, b.N, func(i int) any {
		return Checkin{LeaseID: fmt.Sprintf("pre-%d", i), LicenseKey: "key-1", Time: t0 + int64(b.N+i)}
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i, data := range entries {
		if r := h.f.Apply(&raft.Log{Index: uint64(b.N + 100 + i), Data: data}).(*Result); r.Refusal != nil {
			b.Fatal(r.Refusal)
		}
	}
}

// BenchmarkExpiringBefore asks for the next 100 due leases among 100k.
func BenchmarkExpiringBefore(b *testing.B) {
	h := benchFSM(b, 100000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := h.f.ExpiringBefore(t0+1800*sec, 100); len(got) != 100 {
			b.Fatalf("got %d leases", len(got))
		}
	}
}

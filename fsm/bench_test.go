package fsm

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// Benchmarks of Apply, one per command type in contract.go. Each encodes
// its entries before the timer starts, so ns/op is decode + apply only.
// They run with -bench only; `go test` alone never builds their states.

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

// runApply applies entries as the timed loop, after the harness's log, and
// fails on any refusal unless refusalOK.
func runApply(b *testing.B, h *harness, entries [][]byte, refusalOK bool) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for _, data := range entries {
		h.idx++
		r, _ := h.f.Apply(&raft.Log{Index: h.idx, Data: data}).(*Result)
		if r == nil || (r.Refusal != nil && !refusalOK) {
			b.Fatalf("apply: %+v", r)
		}
	}
}

func BenchmarkApplyCreateProduct(b *testing.B) {
	h := benchFSM(b, 0)
	runApply(b, h, encodeAll(b, CmdCreateProduct, b.N, func(i int) any {
		return CreateProduct{ID: fmt.Sprintf("prod-%d", i), Name: "Product", Time: t0 + int64(i)}
	}), false)
}

func BenchmarkApplyCreatePolicy(b *testing.B) {
	h := benchFSM(b, 0)
	runApply(b, h, encodeAll(b, CmdCreatePolicy, b.N, func(i int) any {
		return CreatePolicy{Time: t0 + int64(i), Policy: Policy{ID: fmt.Sprintf("pol-%d", i), ProductID: "p1",
			Name: "standard", LeaseTTL: 60 * sec, Features: []Feature{{Name: "cad", Seats: 10}, {Name: "view", Seats: -1}}}}
	}), false)
}

// BenchmarkApplyUpdatePolicy changes the seats of a policy shared by 10k
// licenses: licenses reference it, so the cost must not depend on them.
func BenchmarkApplyUpdatePolicy(b *testing.B) {
	h := benchFSM(b, 0)
	for i := 0; i < 10000; i++ {
		mustOK(b, h.apply(CmdCreateLicense, CreateLicense{Time: t0, License: License{
			ID: fmt.Sprintf("lic-%d", i), Key: fmt.Sprintf("key-x-%d", i), PolicyID: "pol1", Customer: "acme"}}))
	}
	runApply(b, h, encodeAll(b, CmdUpdatePolicy, b.N, func(i int) any {
		return UpdatePolicy{ID: "pol1", Features: &[]Feature{{Name: "cad", Seats: i%50 + 1}, {Name: "view", Seats: -1}},
			Time: t0 + int64(i)}
	}), false)
}

func BenchmarkApplyCreateLicense(b *testing.B) {
	h := benchFSM(b, 0)
	runApply(b, h, encodeAll(b, CmdCreateLicense, b.N, func(i int) any {
		return CreateLicense{Time: t0 + int64(i), License: License{ID: fmt.Sprintf("lic-%d", i),
			Key: fmt.Sprintf("key-x-%d", i), PolicyID: "pol1", Customer: "acme", Metadata: map[string]string{"po": "4711"}}}
	}), false)
}

// BenchmarkApplySetLicenseStatus suspends and reinstates a license with
// 10k live leases (suspending ends none of them).
func BenchmarkApplySetLicenseStatus(b *testing.B) {
	h := benchFSM(b, 10000)
	runApply(b, h, encodeAll(b, CmdSetLicenseStatus, b.N, func(i int) any {
		st := StatusSuspended
		if i%2 == 1 {
			st = StatusActive
		}
		return SetLicenseStatus{ID: "lic1", Status: st, Time: t0 + 10000 + int64(i)}
	}), false)
}

func BenchmarkApplyCheckout(b *testing.B) {
	h := benchFSM(b, 10000)
	runApply(b, h, encodeAll(b, CmdCheckout, b.N, func(i int) any {
		return benchCheckout(fmt.Sprintf("b-%d", i), 10000+i)
	}), false)
}

// BenchmarkApplyCheckoutRetry is a retried request id: answered with the
// original lease, no seat taken.
func BenchmarkApplyCheckoutRetry(b *testing.B) {
	h := benchFSM(b, 10000)
	runApply(b, h, encodeAll(b, CmdCheckout, b.N, func(i int) any {
		c := benchCheckout(fmt.Sprintf("pre-%d", i%10000), 10000+i)
		c.LeaseID = fmt.Sprintf("new-%d", i)
		return c
	}), false)
}

// BenchmarkApplyCheckoutDenied hits a full feature: the refusal writes a
// lease.denied audit record.
func BenchmarkApplyCheckoutDenied(b *testing.B) {
	h := newHarness(b)
	h.seed()
	mustOK(b, h.checkout("full-1", "m1", "", t0))
	mustOK(b, h.checkout("full-2", "m2", "", t0))
	runApply(b, h, encodeAll(b, CmdCheckout, b.N, func(i int) any {
		return Checkout{LeaseID: fmt.Sprintf("b-%d", i), LicenseKey: "key-1", Feature: "cad",
			Holder: Holder{Machine: "m3"}, Time: t0 + int64(i)}
	}), true)
}

func BenchmarkApplyCheckin(b *testing.B) {
	h := benchFSM(b, b.N)
	runApply(b, h, encodeAll(b, CmdCheckin, b.N, func(i int) any {
		return Checkin{LeaseID: fmt.Sprintf("pre-%d", i), LicenseKey: "key-1", Time: t0 + int64(b.N+i)}
	}), false)
}

func BenchmarkApplyRevokeLease(b *testing.B) {
	h := benchFSM(b, b.N)
	runApply(b, h, encodeAll(b, CmdRevokeLease, b.N, func(i int) any {
		return RevokeLease{LeaseID: fmt.Sprintf("pre-%d", i), Time: t0 + int64(b.N+i)}
	}), false)
}

// BenchmarkApplyExpireLeases ends a reap batch (1000 leases, the leader's
// batch size) per command among 100k live leases. The due leases are
// checked out again between commands with the timer stopped.
func BenchmarkApplyExpireLeases(b *testing.B) {
	const batch = 1000
	h := benchFSM(b, 100000) // TTLs up to 1 h from t0
	now := t0 + 2*3600*sec   // past every deadline of a refill below
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ids := make([]string, batch)
		for j := range ids {
			ids[j] = fmt.Sprintf("due-%d-%d", i, j)
			c := benchCheckout(ids[j], j)
			c.Time, c.TTL = now-2*sec, sec
			mustOK(b, h.apply(CmdCheckout, c))
		}
		data, err := Encode(CmdExpireLeases, ExpireLeases{LeaseIDs: ids, Time: now})
		if err != nil {
			b.Fatal(err)
		}
		h.idx++
		b.StartTimer()
		r := h.f.Apply(&raft.Log{Index: h.idx, Data: data}).(*Result)
		if len(r.Ended) != batch {
			b.Fatalf("ended %d leases, want %d", len(r.Ended), batch)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/lease")
}

// BenchmarkApplyCheckpointLeases moves a checkpoint batch (5000, the
// leader's batch size) of deadlines later among 100k live leases.
func BenchmarkApplyCheckpointLeases(b *testing.B) {
	const batch = 5000
	h := benchFSM(b, 100000)
	runApply(b, h, encodeAll(b, CmdCheckpointLeases, b.N, func(i int) any {
		ds := make([]LeaseDeadline, batch)
		for j := range ds {
			k := (i*batch + j) % 100000
			ds[j] = LeaseDeadline{LeaseID: fmt.Sprintf("pre-%d", k), ExpiresAt: t0 + 7200*sec + int64(i)*sec}
		}
		return CheckpointLeases{Leases: ds, Time: t0 + 100000 + int64(i)}
	}), false)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/lease")
}

func BenchmarkApplyRegisterKey(b *testing.B) {
	h := benchFSM(b, 0)
	pub := make([]byte, 32)
	runApply(b, h, encodeAll(b, CmdRegisterKey, b.N, func(i int) any {
		return RegisterKey{Key: SigningKey{KID: fmt.Sprintf("kid-%d", i), PublicKey: pub, NodeID: "n1"}, Time: t0 + int64(i)}
	}), false)
}

func BenchmarkApplyRotateKeys(b *testing.B) {
	h := benchFSM(b, 0)
	runApply(b, h, encodeAll(b, CmdRotateKeys, b.N, func(i int) any {
		return RotateKeys{Time: t0 + int64(i)}
	}), false)
}

// BenchmarkApplyRetireKey retires b.N keys of epoch 0 after one rotation.
func BenchmarkApplyRetireKey(b *testing.B) {
	h := benchFSM(b, 0)
	pub := make([]byte, 32)
	for i := 0; i < b.N; i++ {
		mustOK(b, h.apply(CmdRegisterKey, RegisterKey{Key: SigningKey{KID: fmt.Sprintf("kid-%d", i), PublicKey: pub}, Time: t0}))
	}
	mustOK(b, h.apply(CmdRotateKeys, RotateKeys{Time: t0}))
	runApply(b, h, encodeAll(b, CmdRetireKey, b.N, func(i int) any {
		return RetireKey{KID: fmt.Sprintf("kid-%d", i), Time: t0 + int64(i)}
	}), false)
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

package chaos

import (
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

func rec(index uint64, typ, pool, lease, holder string, at int64) api.AuditRecord {
	r := api.AuditRecord{Index: index, Time: time.Unix(0, at), Type: typ, LicenseID: pool, LeaseID: lease}
	if holder != "" {
		r.Holder = &api.Holder{Machine: holder}
	}
	return r
}

func unknown(op Op) Op {
	op.Outcome, op.LeaseID = OutcomeUnknown, ""
	return op
}

func TestResolveUnknownCheckout(t *testing.T) {
	// One seat; c0's checkout timed out; c1 is refused Full later. Whether
	// that refusal is legal depends on what the audit log says.
	raw := History{Seats: map[string]int{"p": 1}, Ops: []Op{
		unknown(checkout(0, "p", "r1", "", 0, 10)),
		full(1, "p", "r2", 20, 30),
	}}
	happened := Resolve(raw, []api.AuditRecord{rec(7, "lease.checkout", "p", "a", "m-r1", 5)})
	if len(happened.Ops) != 2 {
		t.Fatalf("resolved ops = %+v, want both", happened.Ops)
	}
	if op := happened.Ops[0]; op.Outcome != OutcomeOK || op.LeaseID != "a" || op.Return <= 30 {
		t.Errorf("resolved checkout = %+v, want OK with lease a, open past every return", op)
	}
	wantLinearizable(t, happened, true)

	absent := Resolve(raw, []api.AuditRecord{rec(7, "lease.checkout", "p", "b", "m-other", 5)})
	if len(absent.Ops) != 1 || absent.Ops[0].Kind != OpCheckout || absent.Ops[0].Outcome != OutcomeFull {
		t.Fatalf("resolved ops = %+v, want only the Full", absent.Ops)
	}
	wantLinearizable(t, absent, false) // Full with the only seat free
}

func TestResolveDropsWhatChangedNothing(t *testing.T) {
	raw := History{Seats: map[string]int{"p": 2}, Ops: []Op{
		checkout(0, "p", "r1", "a", 0, 10),
		unknown(checkout(0, "p", "r1", "", 11, 20)), // a retry: answering it is a read
		leaseOp(1, "p", OpCheckin, "a", OutcomeUnknown, 30, 40),
		leaseOp(1, "p", OpCheckin, "x", OutcomeUnknown, 30, 40),
		leaseOp(2, "p", OpHeartbeat, "a", OutcomeUnknown, 30, 40),
		{Client: 3, Pool: "p", Kind: OpCount, Outcome: OutcomeUnknown, Call: 30, Return: 40},
		{Client: 3, Pool: "p", Kind: OpCount, Outcome: OutcomeFailed, Call: 41, Return: 42},
		{Client: 4, Pool: "p", Kind: OpCheckout, RequestID: "r9", Holder: "m-r9", Outcome: OutcomeFailed, Call: 41, Return: 42},
	}}
	audit := []api.AuditRecord{
		rec(1, "lease.checkout", "p", "a", "m-r1", 5),
		rec(2, "lease.checkin", "p", "a", "m-r1", 35),
	}
	got := Resolve(raw, audit)
	if len(got.Ops) != 2 {
		t.Fatalf("resolved %d ops, want 2 (checkout and checkin of a): %+v", len(got.Ops), got.Ops)
	}
	if ci := got.Ops[1]; ci.Kind != OpCheckin || ci.LeaseID != "a" || ci.Outcome != OutcomeOK || ci.Return <= 42 {
		t.Errorf("checkin = %+v, want OK of a, open to infinity", ci)
	}
	wantLinearizable(t, got, true)
}

func TestResolveRetries(t *testing.T) {
	// r1's first attempt was applied at 5 but its answer lost; the retry
	// was answered OK at 9; a count in between saw the seat taken. A late
	// retry, sent after the lease expired at 50, was lost too: had it been
	// answered, it would have been refused.
	raw := History{Seats: map[string]int{"p": 1}, Ops: []Op{
		unknown(checkout(0, "p", "r1", "", 0, 4)),
		count(1, "p", 1, 6, 7),
		checkout(0, "p", "r1", "a", 8, 9),
		unknown(checkout(0, "p", "r1", "", 60, 70)),
		count(1, "p", 0, 80, 90),
	}}
	audit := []api.AuditRecord{
		rec(1, "lease.checkout", "p", "a", "m-r1", 5),
		rec(2, "lease.expired", "p", "a", "m-r1", 50),
	}
	got := Resolve(raw, audit)
	if len(got.Ops) != 5 {
		t.Fatalf("resolved %d ops, want the late retry dropped: %+v", len(got.Ops), got.Ops)
	}
	if op := got.Ops[0]; op.Outcome != OutcomeOK || op.LeaseID != "a" || op.Return != 9 {
		t.Errorf("first attempt = %+v, want OK with lease a, applied by the retry's answer at 9", op)
	}
	wantLinearizable(t, got, true)
}

func TestResolveExpiredAndRevoked(t *testing.T) {
	raw := History{Seats: map[string]int{"p": 2}, Ops: []Op{
		checkout(0, "p", "r1", "a", 0, 10),
		checkout(1, "p", "r2", "b", 0, 10),
		checkout(2, "p", "r3", "c", 100, 110),
	}}
	audit := []api.AuditRecord{
		rec(1, "lease.checkout", "p", "a", "m-r1", 5),
		rec(2, "lease.checkout", "p", "b", "m-r2", 6),
		rec(3, "lease.expired", "p", "a", "m-r1", 50),
		rec(4, "lease.revoked", "p", "b", "m-r2", 60),
		rec(5, "lease.expired", "other", "z", "m-z", 70), // a pool not checked
		rec(6, "lease.checkout", "p", "c", "m-r3", 105),
	}
	got := Resolve(raw, audit)
	if len(got.Ops) != 5 {
		t.Fatalf("resolved %d ops, want 3 checkouts and 2 expiries: %+v", len(got.Ops), got.Ops)
	}
	for i, want := range []Op{
		{Client: -1, Pool: "p", Kind: OpExpire, RequestID: ExpireReasonExpired, LeaseID: "a", Outcome: OutcomeOK, Call: 50, Return: 110, Node: -1},
		{Client: -1, Pool: "p", Kind: OpExpire, RequestID: ExpireReasonRevoked, LeaseID: "b", Outcome: OutcomeOK, Call: 60, Return: 110, Node: -1},
	} {
		if got.Ops[3+i] != want {
			t.Errorf("expiry %d = %+v, want %+v", i, got.Ops[3+i], want)
		}
	}
	wantLinearizable(t, got, true)
}

func TestCheckPromises(t *testing.T) {
	hb := leaseOp(0, "p", OpHeartbeat, "a", OutcomeOK, 20, 30)
	hb.ExpiresAt = 90
	co := checkout(0, "p", "r1", "a", 0, 10)
	co.ExpiresAt = 60
	h := History{Seats: map[string]int{"p": 1}, Ops: []Op{co, hb, expire("p", "a", 80, 1000)}}
	bad := CheckPromises(h)
	if len(bad) != 1 || !strings.Contains(bad[0], "lease a") {
		t.Fatalf("CheckPromises = %q, want the heartbeat's promise of 90 broken at 80", bad)
	}
	h.Ops[2].Call = 90
	if bad := CheckPromises(h); len(bad) != 0 {
		t.Errorf("expiry at the deadline reported: %q", bad)
	}
	h.Ops[2].Call, h.Ops[2].RequestID = 50, ExpireReasonRevoked
	if bad := CheckPromises(h); len(bad) != 0 {
		t.Errorf("an admin revoke reported as an early expiry: %q", bad)
	}
}

func TestCheckAcknowledged(t *testing.T) {
	h := History{Seats: map[string]int{"p": 4}, Ops: []Op{
		checkout(0, "p", "r1", "live", 0, 10),
		checkout(1, "p", "r2", "in", 0, 10),
		leaseOp(1, "p", OpCheckin, "in", OutcomeOK, 20, 30),
		checkout(2, "p", "r3", "gone", 0, 10),
		expire("p", "gone", 40, 1000),
		checkout(3, "p", "r4", "lost", 0, 10),
		checkout(3, "p", "r4", "lost", 11, 15), // a retry: reported once
	}}
	bad := CheckAcknowledged(h, map[string]bool{"live": true})
	if len(bad) != 1 || !strings.Contains(bad[0], "lease lost") {
		t.Fatalf("CheckAcknowledged = %q, want lease lost only", bad)
	}
}

func TestCheckRetries(t *testing.T) {
	h := History{Seats: map[string]int{"p": 4}, Ops: []Op{
		checkout(0, "p", "r1", "a", 0, 10),
		checkout(0, "p", "r1", "a", 11, 20),
		checkout(1, "p", "r2", "b", 0, 10),
		checkout(1, "p", "r2", "c", 11, 20),
	}}
	bad := CheckRetries(h)
	if len(bad) != 1 || !strings.Contains(bad[0], "request r2") {
		t.Fatalf("CheckRetries = %q, want request r2 only", bad)
	}
}

func TestCheckVisualization(t *testing.T) {
	h := History{Seats: map[string]int{"p": 1}, Ops: []Op{
		checkout(0, "p", "r1", "a", 0, 10),
		checkout(1, "p", "r2", "b", 20, 30),
		expire("p", "a", 40, 1000),
	}}
	r := wantLinearizable(t, h, false)
	path := t.TempDir() + "/history.html"
	if err := r.WriteVisualization(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<html") || !strings.Contains(string(b), "checkout r2") {
		t.Errorf("visualization of %d bytes lacks the HTML or the operations", len(b))
	}
	if err := (CheckResult{}).WriteVisualization(path); err == nil {
		t.Error("visualization of a zero result succeeded")
	}
}

// TestCheckRandomHistory checks a simulated correct run, 3 pools × 2000
// ops with overlap, lost answers, expiries and revokes: every check must
// accept it quickly, and one wrong count in it must be caught.
func TestCheckRandomHistory(t *testing.T) {
	sim := simulate(rand.New(rand.NewSource(1)), map[string]int{"p1": 1, "p2": 3, "p3": 5}, 2000)
	h := Resolve(sim.raw, sim.audit)
	start := time.Now()
	r := Check(h, time.Minute)
	t.Logf("%d ops in %d pools (%d skipped) checked in %v", r.Ops, r.Pools, r.Skipped, time.Since(start))
	if r.Unknown || !r.Linearizable || r.Pools != 3 || r.Skipped != 0 {
		t.Fatalf("linearizable %v, unknown %v, pools %d, skipped %d: want a legal verdict on 3 pools",
			r.Linearizable, r.Unknown, r.Pools, r.Skipped)
	}
	for name, bad := range map[string][]string{
		"promises":     CheckPromises(h),
		"acknowledged": CheckAcknowledged(h, sim.live),
		"retries":      CheckRetries(h),
	} {
		if len(bad) > 0 {
			t.Errorf("%s: %d violations in a correct run, first %q", name, len(bad), bad[0])
		}
	}

	// Corrupt a count that nothing in its pool overlaps: the seats held
	// during it are fixed, so a count one higher cannot be explained.
	changed := false
	for i, op := range h.Ops {
		if op.Kind == OpCount && op.Pool == "p2" && op.Call > h.Ops[0].Call+5000 && alone(h.Ops, i) {
			h.Ops[i].Count++
			changed = true
			break
		}
	}
	if !changed {
		t.Fatal("the simulated history has no count free of overlap to corrupt")
	}
	start = time.Now()
	r = Check(h, time.Minute)
	t.Logf("with one wrong count: linearizable %v in %v", r.Linearizable, time.Since(start))
	if r.Linearizable || r.Unknown {
		t.Fatalf("a wrong count went unnoticed (unknown %v)", r.Unknown)
	}
}

// alone says whether no other op of the same pool overlaps op i in time.
func alone(ops []Op, i int) bool {
	for j, o := range ops {
		if j != i && o.Pool == ops[i].Pool && o.Call <= ops[i].Return && ops[i].Call <= o.Return {
			return false
		}
	}
	return true
}

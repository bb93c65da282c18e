package chaos

import (
	"testing"
	"time"
)

// Builders of hand-made history ops; times are small integers.

func checkout(c int, pool, req, lease string, call, ret int64) Op {
	return Op{Client: c, Pool: pool, Kind: OpCheckout, RequestID: req, Holder: "m-" + req,
		LeaseID: lease, Outcome: OutcomeOK, Call: call, Return: ret}
}

func full(c int, pool, req string, call, ret int64) Op {
	return Op{Client: c, Pool: pool, Kind: OpCheckout, RequestID: req, Holder: "m-" + req,
		Outcome: OutcomeFull, Call: call, Return: ret}
}

func count(c int, pool string, n int, call, ret int64) Op {
	return Op{Client: c, Pool: pool, Kind: OpCount, Count: n, Outcome: OutcomeOK, Call: call, Return: ret}
}

func leaseOp(c int, pool string, kind OpKind, lease string, o Outcome, call, ret int64) Op {
	return Op{Client: c, Pool: pool, Kind: kind, LeaseID: lease, Outcome: o, Call: call, Return: ret}
}

func expire(pool, lease string, call, ret int64) Op {
	return Op{Client: -1, Pool: pool, Kind: OpExpire, RequestID: ExpireReasonExpired, LeaseID: lease,
		Outcome: OutcomeOK, Call: call, Return: ret}
}

// wantLinearizable checks h and fails, saving a drawing, on the wrong verdict.
func wantLinearizable(t *testing.T, h History, want bool) CheckResult {
	t.Helper()
	r := Check(h, 10*time.Second)
	if r.Unknown {
		t.Fatalf("check timed out")
	}
	if r.Linearizable != want {
		path := t.TempDir() + "/history.html"
		_ = r.WriteVisualization(path)
		t.Fatalf("linearizable = %v, want %v (drawing: %s)", r.Linearizable, want, path)
	}
	return r
}

func TestModelLegalConcurrent(t *testing.T) {
	const inf = 1000
	h := History{Seats: map[string]int{"p": 2, "q": 1}, Ops: []Op{
		checkout(0, "p", "r1", "a", 0, 10),
		checkout(1, "p", "r2", "b", 5, 15),
		full(2, "p", "r3", 8, 20), // overlaps the checkin below: linearized before it
		leaseOp(0, "p", OpCheckin, "a", OutcomeOK, 12, 18),
		count(3, "p", 1, 21, 22),
		leaseOp(1, "p", OpHeartbeat, "b", OutcomeOK, 16, 25),
		leaseOp(0, "p", OpHeartbeat, "a", OutcomeGone, 19, 26),
		checkout(0, "q", "r4", "c", 0, 5),
		full(1, "q", "r5", 6, 7),
		expire("q", "c", 8, inf),
		count(2, "q", 1, 9, 10), // the expiry may be applied after its stamp
		checkout(1, "q", "r6", "d", 11, 30),
		count(2, "q", 1, 31, 32),
	}}
	r := wantLinearizable(t, h, true)
	if r.Ops != len(h.Ops) || r.Pools != 2 {
		t.Errorf("Ops, Pools = %d, %d; want %d, 2", r.Ops, r.Pools, len(h.Ops))
	}
}

func TestModelIllegal(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []Op
	}{
		{"fourth seat of three", []Op{
			checkout(0, "p", "r1", "a", 0, 10),
			checkout(1, "p", "r2", "b", 0, 10),
			checkout(2, "p", "r3", "c", 0, 10),
			checkout(3, "p", "r4", "d", 5, 10),
		}},
		{"full while a seat is free", []Op{
			checkout(0, "p", "r1", "a", 0, 10),
			checkout(1, "p", "r2", "b", 0, 10),
			full(2, "p", "r3", 20, 30),
		}},
		{"stale count after a completed checkout", []Op{
			count(0, "p", 0, 0, 5),
			checkout(1, "p", "r1", "a", 10, 20),
			count(2, "p", 0, 30, 40),
		}},
		{"one request answered with two leases", []Op{
			checkout(0, "p", "r1", "a", 0, 10),
			checkout(0, "p", "r1", "b", 20, 30),
		}},
		{"heartbeat accepted after its expiry was seen", []Op{
			checkout(0, "p", "r1", "a", 0, 10),
			expire("p", "a", 20, 1000),
			count(1, "p", 0, 30, 40),
			leaseOp(0, "p", OpHeartbeat, "a", OutcomeOK, 50, 60),
		}},
		{"retry answered after its lease was checked in", []Op{
			checkout(0, "p", "r1", "a", 0, 10),
			leaseOp(0, "p", OpCheckin, "a", OutcomeOK, 20, 30),
			checkout(0, "p", "r1", "a", 40, 50),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantLinearizable(t, History{Seats: map[string]int{"p": 3}, Ops: tc.ops}, false)
		})
	}
}

func TestModelLegalNeighbours(t *testing.T) {
	// The legal twins of the illegal cases: each differs in one timing or
	// answer, so the illegal verdicts above come from the rule under test.
	for _, tc := range []struct {
		name string
		ops  []Op
	}{
		{"full concurrent with the checkin freeing the seat", []Op{
			checkout(0, "p", "r1", "a", 0, 10),
			checkout(1, "p", "r2", "b", 0, 10),
			checkout(2, "p", "r3", "c", 0, 10),
			leaseOp(0, "p", OpCheckin, "a", OutcomeOK, 20, 40),
			full(3, "p", "r4", 30, 35),
		}},
		{"heartbeat before the expiry is forced", []Op{
			checkout(0, "p", "r1", "a", 0, 10),
			expire("p", "a", 20, 1000),
			leaseOp(0, "p", OpHeartbeat, "a", OutcomeOK, 50, 60),
			count(1, "p", 0, 70, 80),
		}},
		{"retry answered with the original lease", []Op{
			checkout(0, "p", "r1", "a", 0, 10),
			checkout(0, "p", "r1", "a", 20, 30),
			count(1, "p", 1, 40, 50),
		}},
		{"retry of a checked-in lease refused as ended", []Op{
			checkout(0, "p", "r1", "a", 0, 10),
			leaseOp(0, "p", OpCheckin, "a", OutcomeOK, 20, 30),
			{Client: 0, Pool: "p", Kind: OpCheckout, RequestID: "r1", Outcome: OutcomeGone, Call: 40, Return: 50},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantLinearizable(t, History{Seats: map[string]int{"p": 3}, Ops: tc.ops}, true)
		})
	}
}

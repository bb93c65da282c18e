package chaos

import (
	"fmt"
	"math/rand"
	"time"

	"github.com/tallyhq/tally/api"
)

// simulation is a raw history as a workload records it, the audit log a
// correct cluster writes for it, and the leases live at the end.
type simulation struct {
	raw   History
	audit []api.AuditRecord
	live  map[string]bool
}

// simulate runs n ops per pool against a sequential, correct pool: each op
// takes effect at a point t, and its interval is stretched around t so that
// several ops overlap. Some answers are lost (unknown, settled by the audit
// log), some requests fail, expiries and revokes appear only in the audit.
// Every check must accept the result.
func simulate(rng *rand.Rand, seats map[string]int, n int) simulation {
	sim := simulation{raw: History{Seats: seats}, live: map[string]bool{}}
	var t int64 = 1_000_000
	record := func(typ, pool, lease, holder string) {
		r := api.AuditRecord{Index: uint64(len(sim.audit) + 1), Time: time.Unix(0, t), Type: typ,
			LicenseID: pool, LeaseID: lease, Feature: "cad"}
		if holder != "" {
			r.Holder = &api.Holder{Machine: holder}
		}
		sim.audit = append(sim.audit, r)
	}
	type pool struct {
		held, ended []string
		reqOf       map[string]string
		next        int
	}
	pools := map[string]*pool{}
	names := make([]string, 0, len(seats))
	for name := range seats {
		pools[name] = &pool{reqOf: map[string]string{}}
		names = append(names, name)
	}
	for range n * len(seats) {
		t += 10
		name := names[rng.Intn(len(names))]
		p := pools[name]
		op := Op{Client: rng.Intn(8), Pool: name, Outcome: OutcomeOK,
			Call: t - rng.Int63n(25), Return: t + rng.Int63n(25), Node: rng.Intn(3)}
		switch k := rng.Intn(20); {
		case k < 6: // a new checkout
			p.next++
			op.Kind, op.RequestID = OpCheckout, fmt.Sprintf("%s-r%d", name, p.next)
			op.Holder = "m-" + op.RequestID
			if rng.Intn(20) == 0 { // lost before it reached the leader
				op.Outcome = OutcomeUnknown
				break
			}
			if len(p.held) >= seats[name] {
				op.Outcome = OutcomeFull
				record("lease.denied", name, "", op.Holder)
				break
			}
			op.LeaseID, op.ExpiresAt = fmt.Sprintf("%s-l%d", name, p.next), t
			p.held = append(p.held, op.LeaseID)
			p.reqOf[op.LeaseID] = op.RequestID
			record("lease.checkout", name, op.LeaseID, op.Holder)
			if rng.Intn(10) == 0 { // the answer was lost
				op.Outcome, op.LeaseID, op.ExpiresAt = OutcomeUnknown, "", 0
			}
		case k < 8 && len(p.held) > 0: // a retry of a held lease's request
			l := p.held[rng.Intn(len(p.held))]
			op.Kind, op.RequestID, op.LeaseID, op.ExpiresAt = OpCheckout, p.reqOf[l], l, t
			op.Holder = "m-" + op.RequestID
		case k < 12 && len(p.held) > 0: // checkin, expiry or revoke
			i := rng.Intn(len(p.held))
			l := p.held[i]
			p.ended = append(p.ended, l)
			p.held = append(p.held[:i], p.held[i+1:]...)
			switch rng.Intn(6) {
			case 0, 1:
				record("lease.expired", name, l, "")
				continue
			case 2:
				record("lease.revoked", name, l, "")
				continue
			}
			op.Kind, op.LeaseID = OpCheckin, l
			record("lease.checkin", name, l, "")
			if rng.Intn(10) == 0 {
				op.Outcome = OutcomeUnknown
			}
		case k < 16 && len(p.held)+len(p.ended) > 0: // heartbeat
			op.Kind = OpHeartbeat
			if i := rng.Intn(len(p.held) + len(p.ended)); i < len(p.held) {
				op.LeaseID, op.ExpiresAt = p.held[i], t
			} else {
				op.LeaseID, op.Outcome = p.ended[i-len(p.held)], OutcomeGone
			}
		default:
			op.Kind, op.Count = OpCount, len(p.held)
		}
		if op.Kind == OpHeartbeat || op.Kind == OpCount { // reads: losing or refusing one changes nothing
			switch rng.Intn(40) {
			case 0:
				op.Outcome, op.Count, op.ExpiresAt = OutcomeFailed, 0, 0
			case 1:
				op.Outcome, op.Count, op.ExpiresAt = OutcomeUnknown, 0, 0
			}
		}
		sim.raw.Ops = append(sim.raw.Ops, op)
	}
	for _, p := range pools {
		for _, l := range p.held {
			sim.live[l] = true
		}
	}
	rng.Shuffle(len(sim.raw.Ops), func(i, j int) { sim.raw.Ops[i], sim.raw.Ops[j] = sim.raw.Ops[j], sim.raw.Ops[i] })
	return sim
}

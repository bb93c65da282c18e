package chaos

// This file turns a recorded history into one the checker can judge: a
// client that timed out does not know whether its checkout or checkin took
// effect, but the replicated audit log does, and the log also says when the
// leader expired or revoked a lease, which no client observes directly.

import (
	"sort"
	"time"

	"github.com/tallyhq/tally/api"
)

// Audit record types Resolve reads (the fsm's strings, repeated here so the
// checker does not import the server).
const (
	auditCheckout = "lease.checkout"
	auditCheckin  = "lease.checkin"
	auditExpired  = "lease.expired"
	auditRevoked  = "lease.revoked"
)

// An OpExpire made by Resolve carries the audit record type in RequestID
// (an expiry answers no request, and Op has no other field for it), so
// CheckPromises can tell an expiry, bound by the promised deadline, from an
// admin's revoke, which may come at any time.
const (
	ExpireReasonExpired = auditExpired
	ExpireReasonRevoked = auditRevoked
)

// Resolve settles what the audit log knows and drops what changed nothing:
//
//   - an unknown checkout whose Holder has a "lease.checkout" record in its
//     pool happened: it becomes OK with that record's lease; without a
//     record it never took effect and is dropped. Retries of one request
//     share a Holder, and only one attempt took the seat: the earliest
//     called attempt carries the grant if its answer was lost (the seat was
//     taken after it was called), and the other lost attempts are dropped,
//     since answering a retry is a read; an attempt sent after the lease
//     ended would have been refused, not granted;
//   - an unknown checkin with a "lease.checkin" record of its lease becomes
//     OK; without one it is dropped;
//   - unknown heartbeats and counts, and every failed op, are dropped;
//   - every "lease.expired" and "lease.revoked" record of a pool in h.Seats
//     is appended as an OpExpire of client -1, called at the leader's stamp
//     (it cannot take effect before) with RequestID the record type.
//
// A resolved op and an expiry return when their record was surely applied:
// at the first Return of an OK checkout recorded at or after it in the log
// (see auditIndex.bound), else at "infinity", one second after every time of
// the history. Open intervals are sound; the bound only makes them shorter.
// Resolve does not modify h.
func Resolve(h History, audit []api.AuditRecord) History {
	records := append([]api.AuditRecord(nil), audit...)
	sort.SliceStable(records, func(i, j int) bool { return records[i].Index < records[j].Index })
	checkouts := map[string]int{} // holder machine → position of its first checkout record
	checkins := map[string]int{}  // lease id → position of its checkin record
	var ends []int                // positions of expiry and revoke records of checked pools
	for i, r := range records {
		switch r.Type {
		case auditCheckout:
			if r.Holder == nil || r.Holder.Machine == "" {
				continue
			}
			if _, ok := checkouts[r.Holder.Machine]; !ok {
				checkouts[r.Holder.Machine] = i
			}
		case auditCheckin:
			if _, ok := checkins[r.LeaseID]; !ok {
				checkins[r.LeaseID] = i
			}
		case auditExpired, auditRevoked:
			if _, ok := h.Seats[r.LicenseID]; ok {
				ends = append(ends, i)
			}
		}
	}
	a := auditIndex{records: records, checkouts: checkouts, checkins: checkins}
	a.bound(h, ends)
	first := firstAttempts(h)

	out := History{Seats: h.Seats, Ops: make([]Op, 0, len(h.Ops)+len(ends))}
	for n, op := range h.Ops {
		switch op.Outcome {
		case OutcomeFailed:
			continue
		case OutcomeUnknown:
			if op.Kind == OpCheckout && first[op.Holder] != n {
				continue
			}
			resolved, ok := a.resolveUnknown(op)
			if !ok {
				continue
			}
			op = resolved
		}
		out.Ops = append(out.Ops, op)
	}
	for _, i := range ends {
		r := records[i]
		call := r.Time.UnixNano()
		out.Ops = append(out.Ops, Op{
			Client:    -1,
			Pool:      r.LicenseID,
			Kind:      OpExpire,
			RequestID: r.Type,
			LeaseID:   r.LeaseID,
			Outcome:   OutcomeOK,
			Call:      call,
			Return:    max(call, a.appliedBy(i)),
			Node:      -1,
		})
	}
	return out
}

// firstAttempts maps each checkout holder to the index in h.Ops of its
// earliest called attempt answered OK or lost.
func firstAttempts(h History) map[string]int {
	first := map[string]int{}
	for n, op := range h.Ops {
		if op.Kind != OpCheckout || (op.Outcome != OutcomeOK && op.Outcome != OutcomeUnknown) {
			continue
		}
		if f, ok := first[op.Holder]; !ok || op.Call < h.Ops[f].Call {
			first[op.Holder] = n
		}
	}
	return first
}

// auditIndex finds audit records of a history's ops and bounds when a
// record was applied.
type auditIndex struct {
	records   []api.AuditRecord // by Index: the order the cluster applied them
	checkouts map[string]int
	checkins  map[string]int
	// later[i] is the earliest Return of an OK checkout whose record is at
	// position i or after, or infinity.
	later []int64
}

// bound fills later. The audit log is the Raft log's apply order, and a
// checkout is answered OK only after its record was applied, so a record
// was applied before the Return of every OK checkout recorded at or after
// it (a retry answered OK returns after its own first record).
// This closes intervals that would otherwise stay open to infinity:
// porcupine must then place an expiry or a lost answer before the ops that
// followed it, instead of trying it at every later point, which makes
// refuting an illegal history fast. Without such a checkout the bound is
// infinity: one second after the latest time of the history and of the
// expiries (porcupine needs finite times).
func (a *auditIndex) bound(h History, ends []int) {
	var last int64
	for _, op := range h.Ops {
		last = max(last, op.Call, op.Return)
	}
	for _, i := range ends {
		last = max(last, a.records[i].Time.UnixNano())
	}
	inf := last + int64(time.Second)
	a.later = make([]int64, len(a.records)+1)
	for i := range a.later {
		a.later[i] = inf
	}
	for _, op := range h.Ops {
		if op.Kind != OpCheckout || op.Outcome != OutcomeOK {
			continue
		}
		if i, ok := a.checkouts[op.Holder]; ok && op.Holder != "" && a.records[i].LeaseID == op.LeaseID {
			a.later[i] = min(a.later[i], op.Return)
		}
	}
	for i := len(a.records) - 1; i >= 0; i-- {
		a.later[i] = min(a.later[i], a.later[i+1])
	}
}

// appliedBy is a time by which the record at position i was applied.
func (a *auditIndex) appliedBy(i int) int64 { return a.later[i] }

// resolveUnknown settles one unknown op; false drops it.
func (a *auditIndex) resolveUnknown(op Op) (Op, bool) {
	var i int
	var ok bool
	switch op.Kind {
	case OpCheckout:
		i, ok = a.checkouts[op.Holder]
		if op.Holder == "" || !ok {
			return op, false
		}
		if r := a.records[i]; r.LicenseID != "" && r.LicenseID != op.Pool {
			return op, false
		}
		op.LeaseID = a.records[i].LeaseID
	case OpCheckin:
		if i, ok = a.checkins[op.LeaseID]; !ok {
			return op, false
		}
	default: // heartbeats and counts change nothing the model tracks
		return op, false
	}
	op.Outcome = OutcomeOK
	op.Return = max(op.Call, a.appliedBy(i))
	return op, true
}

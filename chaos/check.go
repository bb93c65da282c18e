package chaos

// This file judges a resolved history: linearizability against the pool
// model with porcupine (invariant 7 of DESIGN §8), and the invariants that a
// plain pass over the history decides without a search (5, 2 and 3).

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// CheckResult is porcupine's verdict on a history.
type CheckResult struct {
	Linearizable bool // no violation found (also true when Unknown)
	Unknown      bool // porcupine timed out before deciding
	Ops          int  // operations checked
	Pools        int  // partitions checked
	// Skipped counts ops left out because they were still unresolved or
	// failed: Check expects a history that went through Resolve.
	Skipped int
	// Info is porcupine's linearization data, for WriteVisualization.
	Info porcupine.LinearizationInfo

	model porcupine.Model
}

// Check runs porcupine on a resolved history (see Resolve), one partition
// per pool, giving up after timeout (0: no limit). A timeout is reported as
// Unknown with Linearizable true, since no violation was found.
func Check(h History, timeout time.Duration) CheckResult {
	ops, skipped := operations(h)
	model := poolModel(h.Seats)
	res, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	pools := map[string]bool{}
	for _, op := range ops {
		pools[op.Input.(poolInput).Pool] = true
	}
	return CheckResult{
		Linearizable: res != porcupine.Illegal,
		Unknown:      res == porcupine.Unknown,
		Ops:          len(ops),
		Pools:        len(pools),
		Skipped:      skipped,
		Info:         info,
		model:        model,
	}
}

// WriteVisualization writes porcupine's HTML drawing of the history and its
// (partial) linearizations to path: for an illegal history it shows how far
// each pool could be linearized and which operation could not be placed.
func (r CheckResult) WriteVisualization(path string) error {
	if r.model.Step == nil {
		return fmt.Errorf("chaos: visualization of a result Check did not make")
	}
	return porcupine.VisualizePath(r.model, r.Info, path)
}

// operations converts the history to porcupine's form. Expiries (client -1)
// get a client id after every workload client, since the visualization
// draws one row per client id.
func operations(h History) ([]porcupine.Operation, int) {
	leaderRow := 0
	answers := map[[2]string]int{} // pool, request id → checkout answers OK/Gone
	gone := map[[2]string]bool{}
	for _, op := range h.Ops {
		leaderRow = max(leaderRow, op.Client+1)
		if op.Kind == OpCheckout && op.RequestID != "" {
			k := [2]string{op.Pool, op.RequestID}
			switch op.Outcome {
			case OutcomeOK:
				answers[k]++
			case OutcomeGone:
				gone[k] = true
			}
		}
	}
	var ops []porcupine.Operation
	skipped := 0
	for _, op := range h.Ops {
		if op.Outcome == OutcomeUnknown || op.Outcome == OutcomeFailed {
			skipped++
			continue
		}
		k := [2]string{op.Pool, op.RequestID}
		in := poolInput{Pool: op.Pool, Client: op.Client, Kind: op.Kind, RequestID: op.RequestID,
			Tracked: op.Kind == OpCheckout && (answers[k] > 1 || gone[k])}
		out := poolOutput{Outcome: op.Outcome, Count: op.Count}
		if op.Kind == OpCheckout {
			out.LeaseID = op.LeaseID
		} else {
			in.LeaseID = op.LeaseID
		}
		client := op.Client
		if client < 0 {
			client = leaderRow
		}
		ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Output: out,
			Call: op.Call, Return: op.Return, Metadata: fmt.Sprintf("node %d", op.Node)})
	}
	return ops, skipped
}

// CheckPromises reports every lease expired before a deadline promised to
// its client (invariant 5): each OK checkout or heartbeat of a lease
// promised ExpiresAt, and the leader refuses to renew an expiring lease, so
// every promise must be at or before the lease's expiry stamp. Revokes are
// exempt: an admin may end a lease at any time.
func CheckPromises(h History) []string {
	expired := map[string]int64{} // lease → earliest expiry stamp
	for _, op := range h.Ops {
		if op.Kind != OpExpire || op.RequestID == ExpireReasonRevoked {
			continue
		}
		if t, ok := expired[op.LeaseID]; !ok || op.Call < t {
			expired[op.LeaseID] = op.Call
		}
	}
	var bad []string
	for _, op := range h.Ops {
		if op.Outcome != OutcomeOK || (op.Kind != OpCheckout && op.Kind != OpHeartbeat) {
			continue
		}
		if t, ok := expired[op.LeaseID]; ok && op.ExpiresAt > t {
			bad = append(bad, fmt.Sprintf("pool %s: lease %s expired at %s, before the %s promised to c%d at %s (%s early)",
				op.Pool, op.LeaseID, stamp(t), stamp(op.ExpiresAt), op.Client, stamp(op.Return),
				time.Duration(op.ExpiresAt-t)))
		}
	}
	return bad
}

// CheckAcknowledged reports every lease granted by an OK checkout that was
// lost (invariant 2): not live at the end, and neither expired, revoked
// nor checked in by an OK checkin. Run it on a resolved history, so the
// checkouts that happened unseen count too.
func CheckAcknowledged(h History, live map[string]bool) []string {
	ended := map[string]bool{}
	for _, op := range h.Ops {
		if op.Kind == OpExpire || (op.Kind == OpCheckin && op.Outcome == OutcomeOK) {
			ended[op.LeaseID] = true
		}
	}
	var bad []string
	seen := map[string]bool{}
	for _, op := range h.Ops {
		if op.Kind != OpCheckout || op.Outcome != OutcomeOK || op.LeaseID == "" || seen[op.LeaseID] {
			continue
		}
		seen[op.LeaseID] = true
		if !live[op.LeaseID] && !ended[op.LeaseID] {
			bad = append(bad, fmt.Sprintf("pool %s: lease %s granted to c%d (request %s) at %s was lost: not live, never checked in or expired",
				op.Pool, op.LeaseID, op.Client, op.RequestID, stamp(op.Return)))
		}
	}
	return bad
}

// CheckRetries reports every request id answered with two different leases
// (invariant 3: a retry never takes a second seat).
func CheckRetries(h History) []string {
	leases := map[[2]string][]string{} // pool, request id → distinct leases in answer order
	var keys [][2]string
	for _, op := range h.Ops {
		if op.Kind != OpCheckout || op.Outcome != OutcomeOK || op.RequestID == "" {
			continue
		}
		k := [2]string{op.Pool, op.RequestID}
		if _, ok := leases[k]; !ok {
			keys = append(keys, k)
		}
		known := false
		for _, l := range leases[k] {
			known = known || l == op.LeaseID
		}
		if !known {
			leases[k] = append(leases[k], op.LeaseID)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || (keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1])
	})
	var bad []string
	for _, k := range keys {
		if ls := leases[k]; len(ls) > 1 {
			bad = append(bad, fmt.Sprintf("pool %s: request %s answered with %d leases %v", k[0], k[1], len(ls), ls))
		}
	}
	return bad
}

// stamp renders a Unix-nanosecond time for reports.
func stamp(ns int64) string {
	return time.Unix(0, ns).UTC().Format("15:04:05.000000000")
}

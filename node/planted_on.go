//go:build chaosbugs

package node

import (
	"os"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
)

// Planted bugs for the chaos suite's sensitivity tests, chosen by the
// TALLY_CHAOS_BUG environment variable. Never in a release build.
var (
	plantedBug = os.Getenv("TALLY_CHAOS_BUG")
	// stale-read: a linearizable read is served from local state without
	// a read index.
	bugStaleRead = plantedBug == "stale-read"
	// ack-before-commit: a checkout is answered before Raft commits it.
	bugAckBeforeCommit = plantedBug == "ack-before-commit"
)

// ackBeforeCommit proposes the checkout and answers at once with the lease
// it hopes for, without waiting for the commit or the FSM's verdict.
func (n *Node) ackBeforeCommit(cmd *fsm.Checkout) (*api.LeaseResponse, error) {
	go func() { _, _ = n.apply(fsm.CmdCheckout, cmd) }()
	ttl := cmd.TTL
	if ttl <= 0 {
		ttl = int64(60e9)
	}
	return n.leaseAnswer(fsm.Lease{ID: cmd.LeaseID, Feature: cmd.Feature, Holder: cmd.Holder,
		IssuedAt: cmd.Time, ExpiresAt: cmd.Time + ttl, TTL: ttl})
}

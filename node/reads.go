package node

import (
	"context"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/transport"
)

// readTimeout bounds the wait of a linearizable read.
const readTimeout = 5 * time.Second

// ReadIndex is the leader's half of a linearizable read (Raft §6.4): note
// the last applied command, confirm leadership with a quorum, and hand the
// index back. Every write acknowledged before the read began is at or below
// it: this leader acknowledges only after applying, and writes of earlier
// leaders were applied by the Barrier in establishLeadership.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if !n.leaderReady.Load() {
		return 0, &transport.NotLeaderError{}
	}
	idx := n.fsm.AppliedIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, &api.Error{Code: api.CodeNoLeader, Message: "leadership could not be confirmed; retry", RetryAfter: 1}
	}
	return idx, nil
}

// read makes a read of the given consistency safe to serve from the local
// FSM: stale needs nothing; linearizable waits until the local FSM has
// applied the leader's read index, which followers fetch from the leader.
func (n *Node) read(ctx context.Context, consistency string) error {
	if consistency != api.ConsistencyLinearizable || bugStaleRead {
		n.metrics.staleReads.Inc()
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var idx uint64
	var err error
	if n.leaderReady.Load() {
		idx, err = n.ReadIndex(ctx)
	} else {
		addr := n.leaderHTTPAddr()
		if addr == "" {
			return &api.Error{Code: api.CodeNoLeader, Message: "no leader is known; retry shortly", RetryAfter: 1}
		}
		idx, err = n.readIdx.ReadIndex(ctx, addr)
		if err != nil {
			n.log.Debug("read index failed", "err", err)
			return &api.Error{Code: api.CodeNoLeader, Message: "the leader could not confirm the read; retry", RetryAfter: 1}
		}
	}
	if err != nil {
		return err
	}
	if err := n.applied.wait(ctx, idx); err != nil {
		return &api.Error{Code: api.CodeTimeout, Message: "this node is behind the leader; retry", RetryAfter: 1}
	}
	n.metrics.linearizableReads.Inc()
	return nil
}

// lastContactMS is how long ago this node heard from the leader: 0 on the
// leader itself (ready or not: raft's last contact is not kept up to date
// on a leader), -1 if it never heard from one.
func (n *Node) lastContactMS() int64 {
	if n.leaderReady.Load() || n.raft.State() == raft.Leader {
		return 0
	}
	lc := n.raft.LastContact()
	if lc.IsZero() {
		return -1
	}
	return time.Since(lc).Milliseconds()
}

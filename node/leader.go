package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/fsm"
)

// Batch sizes of the leader's housekeeping commands.
const (
	reapBatch       = 1000
	checkpointBatch = 5000
)

// monitorLeadership starts leader duties when this node wins an election
// and stops them when it loses (Consul's monitorLeadership).
func (n *Node) monitorLeadership() {
	defer n.wg.Done()
	var stop func() // non-nil while leader duties run
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		select {
		case <-n.shutdownCh:
			return
		case isLeader := <-n.leaderNotify:
			n.metrics.isLeader.Set(boolGauge(isLeader))
			switch {
			case isLeader && stop == nil:
				stop = n.startLeaderLoop()
			case !isLeader && stop != nil:
				stop()
				stop = nil
			}
		}
	}
}

// startLeaderLoop runs leaderLoop in the background and returns the func
// that stops it and waits for it to finish.
func (n *Node) startLeaderLoop() func() {
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Add(1)
	go func() {
		defer done.Done()
		n.leaderLoop(ctx)
	}()
	return func() {
		cancel()
		done.Wait()
	}
}

// leaderLoop runs while this node leads: first the Barrier, so the FSM holds
// every entry of earlier terms, then establishLeadership, then the periodic
// duties until leadership is lost.
func (n *Node) leaderLoop(ctx context.Context) {
	defer n.revokeLeadership()
	for {
		if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err == nil {
			break
		} else {
			n.log.Warn("barrier failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := n.establishLeadership(ctx); err != nil {
		return
	}

	reap := time.NewTicker(n.cfg.ReapInterval)
	defer reap.Stop()
	checkpoint := time.NewTicker(n.cfg.CheckpointInterval)
	defer checkpoint.Stop()
	reconcile := time.NewTicker(n.cfg.ReconcileInterval)
	defer reconcile.Stop()
	n.reconcile()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reap.C:
			n.reapDue()
		case <-checkpoint.C:
			n.checkpoint()
		case <-reconcile.C:
			n.reconcile()
		case <-n.gossipChanged:
			n.reconcile()
		case done := <-n.reestablishCh:
			// A snapshot restore replaced the state: its leases and keys
			// are new to this leader, as after an election.
			err := n.establishLeadership(ctx)
			close(done)
			if err != nil {
				return
			}
		}
	}
}

// establishLeadership re-arms every lease with a full TTL (a lease may
// outlive its promise after a failover, never fall short of it), makes and
// registers this node's signing key for the current epoch, and only then
// opens the node to leader-only requests, so that no token is ever signed
// with a key the JWKS does not hold. It fails only when ctx ends.
func (n *Node) establishLeadership(ctx context.Context) error {
	n.lessor.reset()
	n.lessor.rearm(n.fsm.LeaseTimers(), n.now())
	if err := n.establishKey(ctx); err != nil {
		return err
	}
	n.log.Info("leadership established", "leases", n.lessor.len(), "kid", n.signingKey().signer.KeyID())
	return nil
}

// revokeLeadership closes leader-only service and drops the deadlines: the
// next leader re-arms from the replicated state.
func (n *Node) revokeLeadership() {
	if n.leaderReady.Swap(false) {
		n.log.Info("leadership lost")
	}
	n.lessor.reset()
}

// reapDue proposes the expiry of every lease whose deadline has passed.
// While this node is not ready (a snapshot restore runs) it waits for the
// next tick: the restore re-arms every lease afterwards.
func (n *Node) reapDue() {
	if !n.leaderReady.Load() {
		return
	}
	now := n.now()
	for {
		ids := n.lessor.popDue(now, reapBatch)
		if len(ids) == 0 {
			return
		}
		res, err := n.applyDuty(fsm.CmdExpireLeases, &fsm.ExpireLeases{LeaseIDs: ids, Time: now})
		ended := map[string]bool{}
		if err == nil {
			for _, id := range res.Ended {
				ended[id] = true
			}
			n.metrics.expired.Add(float64(len(res.Ended)))
		} else {
			n.log.Warn("expiring leases failed", "err", err, "leases", len(ids))
		}
		var keep []fsm.Lease
		for _, id := range ids {
			if ended[id] {
				continue
			}
			if ls, ok := n.fsm.Lease(id); ok {
				keep = append(keep, ls)
			} else {
				n.lessor.forget([]string{id})
			}
		}
		n.lessor.unexpire(keep, now)
		if err != nil || len(ids) < reapBatch {
			return
		}
	}
}

// checkpoint replicates deadlines that heartbeats moved by more than half a
// second, so a lease's replicated expiry stays close to the truth.
func (n *Node) checkpoint() {
	if !n.leaderReady.Load() {
		return
	}
	ds := n.lessor.drifted(int64(500*time.Millisecond), checkpointBatch)
	if len(ds) == 0 {
		return
	}
	if _, err := n.applyDuty(fsm.CmdCheckpointLeases, &fsm.CheckpointLeases{Leases: ds, Time: n.now()}); err != nil {
		n.log.Warn("checkpoint failed", "err", err)
		return
	}
	n.lessor.checkpointed(ds)
}

// errNotReady is applyDuty's answer while this node does not serve as
// leader.
var errNotReady = errors.New("not the ready leader")

// applyDuty is apply for the leader loop's own commands. When this node is
// not ready (a restore runs, leadership is going) it fails at once: apply
// would hold the call up to LeaderWait for a leader to forward to, and the
// leader loop, stalled meanwhile, could not even take the restore's request
// to re-establish leadership.
func (n *Node) applyDuty(t fsm.CommandType, body any) (*fsm.Result, error) {
	if !n.leaderReady.Load() {
		return nil, errNotReady
	}
	return n.proposeWith(t, body, func(err error) error {
		if errors.Is(err, raft.ErrNotLeader) {
			return errNotReady // not notLeader(): it waits for a leader
		}
		return n.applyError(err)
	})
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

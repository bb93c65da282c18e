package node

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
	"github.com/tallyhq/tally/transport"
)

// apply is the one path by which this node writes to the replicated state.
// Only the ready leader applies; everyone else answers *NotLeaderError and
// the transport forwards the request. A domain refusal comes back as an
// *api.Error with the Result still set, so callers can audit or inspect it.
func (n *Node) apply(t fsm.CommandType, body any) (*fsm.Result, error) {
	if !n.leaderReady.Load() {
		return nil, n.notLeader()
	}
	return n.propose(t, body)
}

// propose is apply without the readiness check, for establishLeadership's
// own writes before the node opens to requests.
func (n *Node) propose(t fsm.CommandType, body any) (*fsm.Result, error) {
	return n.proposeWith(t, body, n.applyError)
}

// proposeWith is propose with its own mapping of Raft's failures.
func (n *Node) proposeWith(t fsm.CommandType, body any, raftError func(error) error) (*fsm.Result, error) {
	data, err := fsm.Encode(t, body)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	f := n.raft.Apply(data, n.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return nil, raftError(err)
	}
	n.metrics.applyLatency.Observe(time.Since(start).Seconds())
	res, ok := f.Response().(*fsm.Result)
	if !ok || res == nil {
		return nil, errors.New("apply returned no result")
	}
	if len(res.Ended) > 0 {
		n.lessor.forget(res.Ended)
	}
	if res.Refusal != nil {
		return res, &api.Error{Code: res.Refusal.Code, Message: res.Refusal.Message}
	}
	return res, nil
}

// applyError maps Raft's failures to what a client can act on.
func (n *Node) applyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// The entry may or may not commit: the client retries, and
		// request ids keep checkouts exactly-once.
		return &api.Error{Code: api.CodeNoLeader, Message: "leadership changed during the write; retry", RetryAfter: 1}
	case errors.Is(err, raft.ErrAbortedByRestore):
		return &api.Error{Code: api.CodeNoLeader, Message: "a snapshot restore replaced the state during the write; retry", RetryAfter: 1}
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return &api.Error{Code: api.CodeTimeout, Message: "the cluster is overloaded; retry", RetryAfter: 1}
	case errors.Is(err, raft.ErrRaftShutdown):
		return &api.Error{Code: api.CodeNoLeader, Message: "this node is shutting down", RetryAfter: 1}
	}
	return err
}

// LeaderAddr waits up to LeaderWait for a leader whose HTTP address is
// known and not stale.
func (n *Node) LeaderAddr(ctx context.Context, stale string) string {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.LeaderWait)
	defer cancel()
	var addr string
	_ = waitFor(ctx, 10*time.Millisecond, func() bool {
		addr = n.leaderHTTPAddr()
		return addr != "" && addr != stale || n.isShutdown()
	})
	if addr == stale {
		return ""
	}
	return addr
}

// notLeader names the leader for forwarding. While an election runs no
// leader is known; rather than bounce the client with a 503 and a whole
// second of Retry-After, it holds the request up to LeaderWait for a leader
// to appear (Consul's RPC hold), so a failover costs the client only the
// election itself.
func (n *Node) notLeader() error {
	addr := n.leaderHTTPAddr()
	if addr == "" {
		addr = n.LeaderAddr(context.Background(), "")
	}
	return &transport.NotLeaderError{LeaderAddr: addr}
}

func (n *Node) isShutdown() bool {
	select {
	case <-n.shutdownCh:
		return true
	default:
		return false
	}
}

func (n *Node) leaderHTTPAddr() string {
	_, id := n.raft.LeaderWithID()
	if id == "" || string(id) == n.cfg.NodeID && !n.leaderReady.Load() {
		return ""
	}
	return n.members.httpAddr(string(id))
}

// now is the leader's clock in Unix ns, the only time that enters the log.
func (n *Node) now() int64 { return n.cfg.Now().UnixNano() }

// notifyingFSM tells waiters when a command has been applied, and the
// node's key loop when the key epoch may have moved.
type notifyingFSM struct {
	*fsm.FSM
	applied  *appliedWaiter
	keyEpoch func() // must not block
	// configIndex is the index of the last committed membership entry.
	// raft v1.7.3's GetConfiguration never reports it, so the node notes
	// it here (raft.ConfigurationStore) for GET /v1/cluster/raft.
	configIndex *atomic.Uint64
}

// StoreConfiguration is called by raft for each committed membership entry;
// those never reach Apply or the replicated state.
func (f *notifyingFSM) StoreConfiguration(index uint64, _ raft.Configuration) {
	f.configIndex.Store(index)
}

func (f *notifyingFSM) Apply(l *raft.Log) interface{} {
	r := f.FSM.Apply(l)
	f.applied.set(l.Index)
	if len(l.Data) > 0 && fsm.CommandType(l.Data[0]) == fsm.CmdRotateKeys {
		f.keyEpoch()
	}
	return r
}

func (f *notifyingFSM) Restore(rc io.ReadCloser) error {
	err := f.FSM.Restore(rc)
	f.applied.set(f.FSM.AppliedIndex())
	f.keyEpoch()
	return err
}

// appliedWaiter lets readers wait until the FSM reaches an index. Its
// channel is made only when a reader has to wait, and closed and dropped
// by the next advance, so applying costs no allocation while nobody waits
// (the common case: only linearizable reads wait).
type appliedWaiter struct {
	mu    sync.Mutex
	index uint64
	ch    chan struct{} // nil while nobody waits
}

func newAppliedWaiter() *appliedWaiter { return &appliedWaiter{} }

func (w *appliedWaiter) set(idx uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.index = idx
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

func (w *appliedWaiter) wait(ctx context.Context, idx uint64) error {
	for {
		w.mu.Lock()
		if w.index >= idx {
			w.mu.Unlock()
			return nil
		}
		if w.ch == nil {
			w.ch = make(chan struct{})
		}
		ch := w.ch
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

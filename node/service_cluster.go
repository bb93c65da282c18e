package node

import (
	"context"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/api"
)

// Status describes this node as it sees the cluster.
func (n *Node) Status(withHash bool) api.Status {
	addr, id := n.raft.LeaderWithID()
	_ = addr
	st := api.Status{
		NodeID:        n.cfg.NodeID,
		State:         stateName(n.raft.State()),
		Leader:        api.LeaderInfo{ID: string(id), HTTPAddr: n.members.httpAddr(string(id))},
		Term:          n.raft.CurrentTerm(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.fsm.AppliedIndex(),
		LastContactMS: n.lastContactMS(),
		LiveLeases:    n.fsm.LeaseCount(),
	}
	if withHash {
		st.StateHash = n.fsm.Hash()
	}
	return st
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Candidate:
		return "candidate"
	case raft.Follower:
		return "follower"
	}
	return "shutdown"
}

func (n *Node) Members() []api.Member { return n.members.list() }

func (n *Node) RaftConfiguration() (*api.RaftConfiguration, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	_, leader := n.raft.LeaderWithID()
	out := &api.RaftConfiguration{Index: n.configurationIndex(), Servers: []api.RaftServer{}}
	for _, s := range f.Configuration().Servers {
		out.Servers = append(out.Servers, api.RaftServer{
			ID:       string(s.ID),
			Address:  string(s.Address),
			Suffrage: s.Suffrage.String(),
			Leader:   s.ID == leader,
		})
	}
	return out, nil
}

// configurationIndex is the log index of the newest configuration this node
// knows committed: from a membership entry it applied, or from the newest
// snapshot when the entry was compacted into it. raft v1.7.3 leaves the
// index of GetConfiguration (and of Stats) at 0.
func (n *Node) configurationIndex() uint64 {
	idx := n.configIndex.Load()
	if metas, err := n.snaps.List(); err == nil {
		for _, m := range metas {
			idx = max(idx, m.ConfigurationIndex)
		}
	}
	return idx
}

// TransferLeadership hands leadership to id, or to the most up-to-date
// follower when id is empty, and returns once a new leader is known.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.leaderReady.Load() {
		return n.notLeader()
	}
	// Raft's refusals of these are plain errors (a 500); they are the
	// admin's mistakes, so they are checked here first.
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return n.applyError(err)
	}
	var target *raft.Server
	otherVoter := false
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == id {
			target = &s
		}
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.NodeID {
			otherVoter = true
		}
	}
	switch {
	case id == n.cfg.NodeID:
		return api.Errorf(api.CodeConflict, id+" is already the leader")
	case id != "" && target == nil:
		return api.Errorf(api.CodeNotFound, "no server "+id+" in the raft configuration")
	case id != "" && target.Suffrage != raft.Voter:
		return api.Errorf(api.CodeConflict, id+" is not a voter and cannot lead")
	case !otherVoter:
		return api.Errorf(api.CodeConflict, "there is no other voter to hand leadership to")
	}
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), target.Address)
	}
	if err := f.Error(); err != nil {
		return n.applyError(err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.LeaderWait)
	defer cancel()
	_ = waitFor(ctx, 10*time.Millisecond, func() bool {
		_, leader := n.raft.LeaderWithID()
		return leader != "" && string(leader) != n.cfg.NodeID
	})
	return nil
}

// RemovePeer takes a server out of the Raft configuration. A server that
// gossip still sees alive is refused: the leader would add it straight back
// (it adds every alive member), so it must be stopped first.
func (n *Node) RemovePeer(ctx context.Context, id string) error {
	if !n.leaderReady.Load() {
		return n.notLeader()
	}
	if _, err := n.raftAddrOf(id); err != nil {
		return err
	}
	if n.members.status(id) == "alive" {
		return api.Errorf(api.CodeConflict, id+" is alive; stop it first, then remove it (an alive member is re-added)")
	}
	return n.applyError(n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error())
}

func (n *Node) raftAddrOf(id string) (raft.ServerAddress, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return "", err
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return s.Address, nil
		}
	}
	return "", api.Errorf(api.CodeNotFound, "no server "+id+" in the raft configuration")
}

// WriteSnapshot streams this node's FSM in the snapshot format.
func (n *Node) WriteSnapshot(w io.Writer) error {
	snap, err := n.fsm.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Release()
	return snap.Persist(&writerSink{Writer: w})
}

// writerSink adapts an io.Writer to raft.SnapshotSink.
type writerSink struct {
	io.Writer
}

func (s *writerSink) ID() string    { return "http" }
func (s *writerSink) Cancel() error { return nil }
func (s *writerSink) Close() error  { return nil }

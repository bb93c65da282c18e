package node

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/api"
)

// nodeMeta is what a node tells its peers through gossip.
type nodeMeta struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http"`
	RaftAddr string `json:"raft"`
	// HasState is true once the node has Raft state (at start, or as soon
	// as it bootstraps or receives entries): such a cluster already exists
	// and must never be bootstrapped again.
	HasState bool `json:"state"`
	// Expect is the node's --bootstrap-expect; 0 for a node that only joins.
	Expect int `json:"expect,omitempty"`
	// Leaving is set just before a graceful leave, so peers can tell a
	// member that left from one that died (memberlist reports both alike).
	Leaving bool `json:"leaving,omitempty"`
}

// memberTable tracks every member gossip has told us about, including the
// dead, so that operators see them.
type memberTable struct {
	mu      sync.RWMutex
	members map[string]api.Member // by node id
	meta    map[string]nodeMeta
	// hadState holds the ids of members that ever advertised Raft state,
	// whatever their status now: their cluster exists.
	hadState map[string]bool
}

func newMemberTable() *memberTable {
	return &memberTable{members: map[string]api.Member{}, meta: map[string]nodeMeta{}, hadState: map[string]bool{}}
}

// set records n. A member that goes away is "left" if it announced its
// leave, else "dead".
func (t *memberTable) set(n *memberlist.Node, gone bool) {
	var m nodeMeta
	if err := json.Unmarshal(n.Meta, &m); err != nil || m.ID == "" {
		return // not a Tally server
	}
	status := "alive"
	if gone {
		status = "dead"
		if m.Leaving {
			status = "left"
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.meta[m.ID] = m
	if m.HasState {
		t.hadState[m.ID] = true
	}
	t.members[m.ID] = api.Member{
		ID:         m.ID,
		GossipAddr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
		HTTPAddr:   m.HTTPAddr,
		RaftAddr:   m.RaftAddr,
		Status:     status,
	}
}

func (t *memberTable) list() []api.Member {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]api.Member, 0, len(t.members))
	for _, m := range t.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (t *memberTable) status(id string) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.members[id].Status
}

func (t *memberTable) httpAddr(id string) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.meta[id].HTTPAddr
}

// alive returns the metadata of alive members.
func (t *memberTable) alive() []nodeMeta {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []nodeMeta
	for id, m := range t.members {
		if m.Status == "alive" {
			out = append(out, t.meta[id])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// knownMember is one member as the bootstrap decision sees it.
type knownMember struct {
	meta     nodeMeta
	status   string
	hadState bool
}

// known returns every member, by id.
func (t *memberTable) known() []knownMember {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]knownMember, 0, len(t.members))
	for id, m := range t.members {
		out = append(out, knownMember{meta: t.meta[id], status: m.Status, hadState: t.hadState[id]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].meta.ID < out[j].meta.ID })
	return out
}

// gossipDelegate feeds memberlist events into the table and serves this
// node's metadata, which changes when the node gets Raft state or leaves.
type gossipDelegate struct {
	mu      sync.Mutex
	self    nodeMeta
	meta    []byte // self, encoded
	members *memberTable
	// changed wakes the leader's reconcile, discovered the discovery loop.
	changed    chan struct{}
	discovered chan struct{}
}

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}

// setMeta changes this node's metadata; memberlist sends it with the next
// UpdateNode.
func (d *gossipDelegate) setMeta(change func(*nodeMeta)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.self
	change(&m)
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > memberlist.MetaMaxSize {
		return fmt.Errorf("gossip metadata too large (%d bytes)", len(b))
	}
	d.self, d.meta = m, b
	return nil
}

func (d *gossipDelegate) NotifyMsg([]byte)                           {}
func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *gossipDelegate) LocalState(join bool) []byte                { return nil }
func (d *gossipDelegate) MergeRemoteState(buf []byte, join bool)     {}
func (d *gossipDelegate) NotifyJoin(n *memberlist.Node)              { d.update(n, false) }
func (d *gossipDelegate) NotifyUpdate(n *memberlist.Node)            { d.update(n, false) }
func (d *gossipDelegate) NotifyLeave(n *memberlist.Node)             { d.update(n, true) }

func (d *gossipDelegate) update(n *memberlist.Node, gone bool) {
	d.members.set(n, gone)
	for _, ch := range []chan struct{}{d.changed, d.discovered} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (n *Node) startGossip() error {
	c := &n.cfg
	host, portStr, _ := net.SplitHostPort(c.GossipAddr)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("gossip port: %w", err)
	}
	hasState, err := raft.HasExistingState(n.bolt, n.bolt, n.snaps)
	if err != nil {
		return err
	}
	n.hadState = hasState
	mc := memberlist.DefaultLANConfig()
	if c.GossipProfile == "local" {
		mc = memberlist.DefaultLocalConfig()
	}
	mc.Name = c.NodeID
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	n.gossipChanged = make(chan struct{}, 1)
	d := &gossipDelegate{members: n.members, changed: n.gossipChanged, discovered: make(chan struct{}, 1)}
	err = d.setMeta(func(m *nodeMeta) {
		*m = nodeMeta{ID: c.NodeID, HTTPAddr: n.httpAddr, RaftAddr: c.RaftAddr, HasState: hasState, Expect: c.BootstrapExpect}
	})
	if err != nil {
		return err
	}
	n.delegate = d
	mc.Delegate, mc.Events = d, d
	mc.Logger = log.New(io.Discard, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	n.gossip = ml
	c.GossipAddr = net.JoinHostPort(host, strconv.Itoa(mc.BindPort))
	return nil
}

// GossipAddr is the bound gossip address.
func (n *Node) GossipAddr() string { return n.cfg.GossipAddr }

// discover joins --join and the members saved in the data dir (retrying
// until one answers, or until someone joins us), bootstraps the cluster
// when --bootstrap-expect allows, tells peers once this node has Raft
// state, and keeps the saved member list current until shutdown.
func (n *Node) discover() {
	defer n.wg.Done()
	join := n.joinAddrs()
	joined := len(join) == 0
	b := &bootstrapper{n: n}
	bootstrapped := false
	advertised := n.hadState
	var saved []string
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	tick := t.C
	for {
		if !joined {
			if n.gossip.NumMembers() > 1 {
				joined = true // a peer joined us
			} else if _, err := n.gossip.Join(join); err == nil {
				joined = true
				n.log.Info("joined gossip", "peers", join)
			}
		}
		if !bootstrapped {
			bootstrapped = b.try()
		}
		if !advertised && n.hasRaftState() {
			advertised = n.advertiseState()
		}
		saved = n.savePeers(saved)
		if joined && bootstrapped && advertised {
			tick = nil // only membership changes matter now
		}
		select {
		case <-n.shutdownCh:
			return
		case <-tick:
		case <-n.delegate.discovered:
		}
	}
}

// hasRaftState says whether this node holds a log, a snapshot or a term:
// then it belongs to a cluster.
func (n *Node) hasRaftState() bool {
	return n.raft.LastIndex() > 0 || n.raft.CurrentTerm() > 0
}

// advertiseState tells peers that this node now has Raft state, so that no
// fresh node with --bootstrap-expect starts a second cluster beside it.
func (n *Node) advertiseState() bool {
	if err := n.delegate.setMeta(func(m *nodeMeta) { m.HasState = true }); err != nil {
		n.log.Error("gossip metadata", "err", err)
		return false
	}
	if err := n.gossip.UpdateNode(time.Second); err != nil {
		n.log.Warn("advertising raft state", "err", err)
	}
	return true
}

// leaveGossip announces the leave in this node's metadata, then leaves, so
// peers report the member "left" rather than "dead".
func (n *Node) leaveGossip() {
	if err := n.delegate.setMeta(func(m *nodeMeta) { m.Leaving = true }); err == nil {
		_ = n.gossip.UpdateNode(500 * time.Millisecond)
	}
	_ = n.gossip.Leave(time.Second)
}

// reconcile, on the leader, adds alive gossip members missing from the Raft
// configuration and reports voters that gossip marks dead or left. Those are
// only reported: gossip cannot tell a crashed node from a partitioned one,
// and a restarting node leaves too, so removing a voter is an operator's
// decision (tally operator raft remove-peer).
func (n *Node) reconcile() {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return
	}
	known := map[raft.ServerID]raft.ServerAddress{}
	for _, s := range f.Configuration().Servers {
		known[s.ID] = s.Address
	}
	for id := range known {
		switch st := n.members.status(string(id)); {
		case (st == "dead" || st == "left") && !n.reportedDead[id]:
			n.reportedDead[id] = true
			n.log.Warn("a voter is "+st+" in gossip; it stays a voter until removed; if it is gone for good, run `tally operator raft remove-peer "+string(id)+"`", "id", id)
		case st == "alive":
			delete(n.reportedDead, id)
		}
	}
	for _, m := range n.members.alive() {
		if addr, ok := known[raft.ServerID(m.ID)]; ok && string(addr) == m.RaftAddr {
			continue
		}
		n.log.Info("adding voter", "id", m.ID, "raft", m.RaftAddr)
		if err := n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
			n.log.Warn("add voter failed", "id", m.ID, "err", err)
		}
	}
}

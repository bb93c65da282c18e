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
	// HasState is true when the node had Raft state at start: such a
	// cluster already exists and must never be bootstrapped again.
	HasState bool `json:"state"`
}

// memberTable tracks every member gossip has told us about, including the
// dead, so that operators see them.
type memberTable struct {
	mu      sync.RWMutex
	members map[string]api.Member // by node id
	meta    map[string]nodeMeta
}

func newMemberTable() *memberTable {
	return &memberTable{members: map[string]api.Member{}, meta: map[string]nodeMeta{}}
}

func (t *memberTable) set(n *memberlist.Node, status string) {
	var m nodeMeta
	if err := json.Unmarshal(n.Meta, &m); err != nil || m.ID == "" {
		return // not a Tally server
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.meta[m.ID] = m
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

// gossipDelegate feeds memberlist events into the table.
type gossipDelegate struct {
	meta    []byte
	members *memberTable
	changed chan struct{}
}

func (d *gossipDelegate) NodeMeta(limit int) []byte                  { return d.meta }
func (d *gossipDelegate) NotifyMsg([]byte)                           {}
func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *gossipDelegate) LocalState(join bool) []byte                { return nil }
func (d *gossipDelegate) MergeRemoteState(buf []byte, join bool)     {}
func (d *gossipDelegate) NotifyJoin(n *memberlist.Node)              { d.update(n, "alive") }
func (d *gossipDelegate) NotifyUpdate(n *memberlist.Node)            { d.update(n, "alive") }
func (d *gossipDelegate) NotifyLeave(n *memberlist.Node) {
	status := "dead"
	if n.State == memberlist.StateLeft {
		status = "left"
	}
	d.update(n, status)
}

func (d *gossipDelegate) update(n *memberlist.Node, status string) {
	d.members.set(n, status)
	select {
	case d.changed <- struct{}{}:
	default:
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
	meta, _ := json.Marshal(nodeMeta{ID: c.NodeID, HTTPAddr: n.httpAddr, RaftAddr: c.RaftAddr, HasState: hasState})
	if len(meta) > memberlist.MetaMaxSize {
		return fmt.Errorf("gossip metadata too large (%d bytes)", len(meta))
	}
	mc := memberlist.DefaultLANConfig()
	if c.GossipProfile == "local" {
		mc = memberlist.DefaultLocalConfig()
	}
	mc.Name = c.NodeID
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	n.gossipChanged = make(chan struct{}, 1)
	d := &gossipDelegate{meta: meta, members: n.members, changed: n.gossipChanged}
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

// discover joins the configured peers (retrying until one answers) and
// bootstraps the cluster when --bootstrap-expect is met.
func (n *Node) discover() {
	defer n.wg.Done()
	joined := len(n.cfg.Join) == 0
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if !joined {
			if _, err := n.gossip.Join(n.cfg.Join); err == nil {
				joined = true
				n.log.Info("joined gossip", "peers", n.cfg.Join)
			}
		}
		if n.tryBootstrap() && joined {
			return
		}
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
		case <-n.gossipChanged:
		}
	}
}

// tryBootstrap forms the cluster once BootstrapExpect servers are alive and
// none has Raft state. Every node computes the same configuration from the
// same gossip view, and raft accepts an identical bootstrap on all of them.
// It returns true when there is nothing more to do.
func (n *Node) tryBootstrap() bool {
	if n.hadState || n.cfg.BootstrapExpect == 0 {
		return true
	}
	alive := n.members.alive()
	if len(alive) < n.cfg.BootstrapExpect {
		return false
	}
	var servers []raft.Server
	for _, m := range alive {
		if m.HasState {
			n.log.Info("not bootstrapping: a peer already has raft state", "peer", m.ID)
			return true
		}
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr)})
	}
	if len(servers) > n.cfg.BootstrapExpect {
		// More servers than expected showed up at once; bootstrap the
		// first ones by id and let the leader add the rest.
		servers = servers[:n.cfg.BootstrapExpect]
	}
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && err != raft.ErrCantBootstrap {
		n.log.Error("bootstrap failed", "err", err)
		return false
	}
	n.log.Info("bootstrapped cluster", "servers", len(servers))
	return true
}

// reconcile, on the leader, reports voters gossip marks dead and adds alive gossip members missing from the Raft
// configuration. Dead members are only reported: removing a voter is an
// operator's decision (tally operator raft remove-peer).
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
		if st := n.members.status(string(id)); st == "dead" && !n.reportedDead[id] {
			n.reportedDead[id] = true
			n.log.Warn("a voter is dead in gossip; if it is gone for good, run `tally operator raft remove-peer "+string(id)+"`", "id", id)
		} else if st == "alive" {
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

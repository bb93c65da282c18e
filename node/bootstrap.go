package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/api"
)

// bootstrapPlan is what --bootstrap-expect allows now.
type bootstrapPlan struct {
	// servers is the configuration to bootstrap, once it is complete.
	servers []nodeMeta
	// probe lists the alive peers to ask for Raft state before that.
	probe []nodeMeta
	// exists is true when a cluster already exists: never bootstrap.
	exists bool
	// reason says why not (yet), and peer whom it is about.
	reason, peer string
}

// planBootstrap decides from the gossip view alone, like Consul's
// bootstrap-expect: no bootstrap while any member, alive or not, ever had
// Raft state; none until exactly expect alive servers advertise the same
// --bootstrap-expect. More than expect is refused rather than cut to the
// first ones, because nodes seeing different members would cut different
// configurations. Members started without --bootstrap-expect only join:
// they are not counted, but are asked for state like the others.
func planBootstrap(self string, expect int, known []knownMember) bootstrapPlan {
	for _, m := range known {
		if m.hadState && m.meta.ID != self {
			return bootstrapPlan{exists: true, reason: "not bootstrapping: a peer already has raft state", peer: m.meta.ID}
		}
	}
	var p bootstrapPlan
	for _, m := range known {
		if m.status != "alive" {
			continue
		}
		if m.meta.Expect != 0 && m.meta.Expect != expect {
			return bootstrapPlan{reason: fmt.Sprintf("not bootstrapping yet: a peer has --bootstrap-expect %d, this node %d; all must agree", m.meta.Expect, expect), peer: m.meta.ID}
		}
		if m.meta.ID != self {
			p.probe = append(p.probe, m.meta)
		}
		if m.meta.Expect == expect {
			p.servers = append(p.servers, m.meta)
		}
	}
	switch {
	case len(p.servers) < expect:
		return bootstrapPlan{}
	case len(p.servers) > expect:
		return bootstrapPlan{reason: fmt.Sprintf("not bootstrapping yet: %d servers with --bootstrap-expect %d are alive, more servers than --bootstrap-expect; stop the extra ones, or start them without --bootstrap-expect", len(p.servers), expect)}
	}
	return p
}

// bootstrapper runs the bootstrap decision in the discovery loop.
type bootstrapper struct {
	n    *Node
	http *http.Client
	last string // the last reason logged, so a waiting node logs it once
}

func (b *bootstrapper) note(reason, peer string, args ...any) {
	if reason == "" || reason+peer == b.last {
		return
	}
	b.last = reason + peer
	if peer != "" {
		args = append([]any{"peer", peer}, args...)
	}
	b.n.log.Info(reason, args...)
}

// try bootstraps the cluster if the plan allows and every alive peer
// confirms, over its HTTP API, that it has no Raft state: gossip metadata
// can be stale, and older nodes never updated it. It returns true when
// there is nothing more to do.
func (b *bootstrapper) try() bool {
	n := b.n
	if n.cfg.BootstrapExpect == 0 || n.hasRaftState() {
		return true
	}
	p := planBootstrap(n.cfg.NodeID, n.cfg.BootstrapExpect, n.members.known())
	b.note(p.reason, p.peer)
	if p.exists {
		return true
	}
	if p.servers == nil {
		return false
	}
	if b.http == nil {
		b.http = &http.Client{Timeout: 2 * time.Second}
	}
	for _, m := range p.probe {
		has, err := peerHasState(b.http, m.HTTPAddr)
		if err != nil {
			b.note("not bootstrapping yet: cannot ask a peer whether it has raft state", m.ID, "err", err)
			return false
		}
		if has {
			b.note("not bootstrapping: a peer already has raft state", m.ID)
			return true
		}
	}
	var servers []raft.Server
	var ids []string
	for _, m := range p.servers {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr)})
		ids = append(ids, m.ID)
	}
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	switch {
	case errors.Is(err, raft.ErrCantBootstrap):
		// Entries arrived from a leader meanwhile: this node is a member.
		n.log.Info("not bootstrapping: this node has raft state")
		return true
	case err != nil:
		n.log.Error("bootstrap failed", "err", err)
		return false
	}
	n.log.Info("bootstrapped cluster", "servers", strings.Join(ids, ","))
	return true
}

// peerHasState asks a peer's GET /v1/status whether it has Raft state: any
// term or index above zero.
func peerHasState(c *http.Client, httpAddr string) (bool, error) {
	if httpAddr == "" {
		return false, errors.New("no http address")
	}
	url := httpAddr
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		url = "http://" + url
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(url, "/")+"/v1/status", nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	var st api.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&st); err != nil {
		return false, err
	}
	return st.Term > 0 || st.CommitIndex > 0 || st.AppliedIndex > 0, nil
}

// peersFile, in the data dir, holds the gossip addresses of the members
// this node knew (Consul keeps a serf snapshot for the same reason): a node
// restarted without --join finds its cluster again through them.
const peersFile = "peers.json"

type savedPeers struct {
	GossipAddrs []string `json:"gossip_addrs"`
}

// joinAddrs is --join plus the saved members, without this node.
func (n *Node) joinAddrs() []string {
	var saved savedPeers
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, peersFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &saved); err != nil {
			n.log.Warn("ignoring unreadable "+peersFile, "err", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		n.log.Warn("ignoring unreadable "+peersFile, "err", err)
	}
	var out []string
	for _, a := range append(slices.Clone(n.cfg.Join), saved.GossipAddrs...) {
		if a != n.cfg.GossipAddr && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// savePeers writes the gossip addresses of every member known, dead and
// left included (a restarting member leaves), when they differ from last,
// and returns what the file holds. The file is replaced atomically, so a
// crash leaves the old list or the new one.
func (n *Node) savePeers(last []string) []string {
	var addrs []string
	for _, m := range n.members.list() {
		if m.ID != n.cfg.NodeID {
			addrs = append(addrs, m.GossipAddr)
		}
	}
	slices.Sort(addrs)
	if len(addrs) == 0 || slices.Equal(addrs, last) {
		return last
	}
	b, _ := json.Marshal(savedPeers{GossipAddrs: addrs})
	if err := writeFileAtomic(filepath.Join(n.cfg.DataDir, peersFile), b); err != nil {
		n.log.Warn("saving gossip members", "err", err)
		return last
	}
	return addrs
}

func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, there is none
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

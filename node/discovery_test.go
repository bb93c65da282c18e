package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/internal/syncbuf"
	"github.com/tallyhq/tally/node"
)

// captureLogs makes every node whose id starts with prefix log into a
// buffer of logs, by id.
func captureLogs(logs map[string]*syncbuf.Buffer, prefix string) func(*node.Config) {
	var mu sync.Mutex
	return func(cfg *node.Config) {
		if !strings.HasPrefix(cfg.NodeID, prefix) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		b := &syncbuf.Buffer{}
		logs[cfg.NodeID] = b
		cfg.Logger = slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
}

func configIDs(t *testing.T, l raft.Log) []string {
	t.Helper()
	if l.Type != raft.LogConfiguration {
		t.Fatalf("log entry %d is a %v, want the configuration", l.Index, l.Type)
	}
	var ids []string
	for _, s := range raft.DecodeConfiguration(l.Data).Servers {
		ids = append(ids, string(s.ID))
	}
	return ids
}

// Fresh nodes started with --bootstrap-expect next to a running cluster
// (same --join) must not bootstrap a second configuration: the leader adds
// them as voters, every node's first log entry stays the cluster's own, and
// no election happens. With a member dead, the fresh node and the two alive
// ones are exactly --bootstrap-expect servers: only their Raft state, told
// by gossip or asked over HTTP, stops a bootstrap then.
func TestBootstrapExpectNextToExistingCluster(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fresh int
		dead  bool
	}{
		{"one fresh", 1, false},
		{"two fresh", 2, false},
		{"one fresh replacing a dead node", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fresh := tc.fresh
			c := newTestCluster(t, 3)
			provision(t, c.clientAll(), 1, 60)
			ld := c.waitLeader()
			if tc.dead {
				victim := c.followers()[0]
				c.kill(victim)
				c.eventually(30*time.Second, "gossip marks the killed node dead", func() bool {
					return memberStatus(c.nodes[ld].n, c.nodes[victim].id) == "dead"
				})
			}
			leaderID := c.nodes[ld].id
			term := c.nodes[ld].n.Status(false).Term
			want, err := c.nodes[ld].n.RaftLog(1)
			if err != nil {
				t.Fatal(err)
			}
			wantIDs := configIDs(t, want)

			logs := map[string]*syncbuf.Buffer{}
			c.tweaks = append(c.tweaks, captureLogs(logs, "a"))
			for k := 0; k < fresh; k++ {
				c.nodes = append(c.nodes, &testNode{id: fmt.Sprintf("a%d", k), dataDir: t.TempDir(), addrs: [3]string{freeAddr(t), freeAddr(t), freeAddr(t)}})
				c.startWith(3+k, 3)
			}
			c.eventually(20*time.Second, "the fresh nodes become voters and hold log entry 1", func() bool {
				cfg, err := c.nodes[ld].n.RaftConfiguration()
				if err != nil || len(cfg.Servers) != 3+fresh {
					return false
				}
				for _, tn := range c.live() {
					if _, err := tn.n.RaftLog(1); err != nil {
						return false
					}
				}
				return true
			})
			for _, tn := range c.live() {
				got, _ := tn.n.RaftLog(1)
				if got.Term != want.Term || !bytes.Equal(got.Data, want.Data) {
					t.Errorf("%s: log entry 1 is term %d %v, want term %d %v", tn.id, got.Term, configIDs(t, got), want.Term, wantIDs)
				}
			}
			for id, b := range logs {
				if strings.Contains(b.String(), "bootstrapped cluster") {
					t.Errorf("%s bootstrapped next to an existing cluster:\n%s", id, b.String())
				}
			}
			if got := c.waitLeader(); c.nodes[got].id != leaderID || c.nodes[got].n.Status(false).Term != term {
				t.Errorf("leader %s at term %d after the fresh nodes came, want %s still at term %d",
					c.nodes[got].id, c.nodes[got].n.Status(false).Term, leaderID, term)
			}
			c.checkInvariants()
		})
	}
}

// fakePeer is a gossip member with a Tally node's metadata and an HTTP
// /v1/status, but no Raft: it lets a test show a node any view it needs.
type fakePeer struct {
	ml     *memberlist.Memberlist
	meta   *fakeMeta
	events *metaEvents
}

// metaEvents keeps the gossip metadata a fake peer has seen of each
// member. Memberlist changes a member's Meta under its own lock, so it may
// be read only inside these callbacks, never through Members().
type metaEvents struct {
	mu   sync.Mutex
	meta map[string][]byte // by member name
}

func (e *metaEvents) record(n *memberlist.Node) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.meta[n.Name] = bytes.Clone(n.Meta)
}

func (e *metaEvents) NotifyJoin(n *memberlist.Node)   { e.record(n) }
func (e *metaEvents) NotifyUpdate(n *memberlist.Node) { e.record(n) }
func (e *metaEvents) NotifyLeave(n *memberlist.Node)  { e.record(n) }

// seen returns a copy of the metadata seen so far.
func (e *metaEvents) seen() map[string][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.meta)
}

type fakeMeta struct {
	mu   sync.Mutex
	meta map[string]any
}

func (d *fakeMeta) NodeMeta(int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, _ := json.Marshal(d.meta)
	return b
}
func (d *fakeMeta) NotifyMsg([]byte)                    {}
func (d *fakeMeta) GetBroadcasts(int, int) [][]byte     { return nil }
func (d *fakeMeta) LocalState(bool) []byte              { return nil }
func (d *fakeMeta) MergeRemoteState(buf []byte, _ bool) {}

// startFakePeer starts a fake member id that gossips hasState and whose
// /v1/status reports term, joined to join (if any).
func startFakePeer(t *testing.T, id string, expect int, gossipState bool, term uint64, join ...string) *fakePeer {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Status{NodeID: id, State: "follower", Term: term})
	}))
	t.Cleanup(srv.Close)
	meta := &fakeMeta{meta: map[string]any{
		"id": id, "http": strings.TrimPrefix(srv.URL, "http://"), "raft": freeAddr(t),
		"state": gossipState, "expect": expect,
	}}
	mc := memberlist.DefaultLocalConfig()
	mc.Name = id
	mc.BindAddr, mc.BindPort = "127.0.0.1", 0
	mc.Delegate = meta
	events := &metaEvents{meta: map[string][]byte{}}
	mc.Events = events
	mc.LogOutput = &syncbuf.Buffer{}
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	if len(join) > 0 {
		if _, err := ml.Join(join); err != nil {
			t.Fatal(err)
		}
	}
	return &fakePeer{ml: ml, meta: meta, events: events}
}

// leave leaves gossip as a Tally node does: it announces the leave in its
// metadata first.
func (p *fakePeer) leave(t *testing.T) {
	t.Helper()
	p.meta.mu.Lock()
	p.meta.meta["leaving"] = true
	p.meta.mu.Unlock()
	if err := p.ml.UpdateNode(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.ml.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
}

func (p *fakePeer) addr() string {
	n := p.ml.LocalNode()
	return fmt.Sprintf("%s:%d", n.Addr, n.Port)
}

// A gossip member may advertise no Raft state while it has some (its
// metadata is stale, or it runs an older build): before bootstrapping, a
// node asks every peer directly.
func TestBootstrapAsksPeersForRaftState(t *testing.T) {
	p1 := startFakePeer(t, "p1", 3, false, 4)
	startFakePeer(t, "p2", 3, false, 0, p1.addr())
	logs := map[string]*syncbuf.Buffer{}
	c := &testCluster{t: t, tweaks: []func(*node.Config){captureLogs(logs, ""), func(cfg *node.Config) { cfg.Join = []string{p1.addr()} }}}
	c.nodes = []*testNode{{id: "n1", dataDir: t.TempDir(), addrs: [3]string{freeAddr(t), freeAddr(t), freeAddr(t)}}}
	t.Cleanup(func() { c.stop(c.nodes[0]) })
	c.startWith(0, 3)
	c.eventually(10*time.Second, "n1 refuses to bootstrap", func() bool {
		return strings.Contains(logs["n1"].String(), "not bootstrapping: a peer already has raft state")
	})
	if st := c.nodes[0].n.Status(false); st.Term != 0 || st.CommitIndex != 0 {
		t.Fatalf("n1 bootstrapped anyway: %+v", st)
	}
}

// More servers with --bootstrap-expect N than N are alive: a node refuses
// to bootstrap (cutting the list could give nodes different configurations)
// and waits; once exactly N are left, it bootstraps with those.
func TestBootstrapRefusesMoreThanExpected(t *testing.T) {
	p1 := startFakePeer(t, "p1", 3, false, 0)
	startFakePeer(t, "p2", 3, false, 0, p1.addr())
	p3 := startFakePeer(t, "p3", 3, false, 0, p1.addr())
	logs := map[string]*syncbuf.Buffer{}
	c := &testCluster{t: t, tweaks: []func(*node.Config){captureLogs(logs, ""), func(cfg *node.Config) { cfg.Join = []string{p1.addr()} }}}
	c.nodes = []*testNode{{id: "n1", dataDir: t.TempDir(), addrs: [3]string{freeAddr(t), freeAddr(t), freeAddr(t)}}}
	t.Cleanup(func() { c.stop(c.nodes[0]) })
	c.startWith(0, 3)
	c.eventually(10*time.Second, "n1 refuses: 4 servers for 3", func() bool {
		return strings.Contains(logs["n1"].String(), "more servers than --bootstrap-expect")
	})
	if st := c.nodes[0].n.Status(false); st.Term != 0 || st.CommitIndex != 0 {
		t.Fatalf("n1 bootstrapped with 4 servers alive: %+v", st)
	}
	p3.leave(t)
	c.eventually(10*time.Second, "n1 bootstraps with the 3 left", func() bool {
		l, err := c.nodes[0].n.RaftLog(1)
		return err == nil && strings.Join(configIDs(t, l), " ") == "n1 p1 p2"
	})
}

// A member that once advertised Raft state, even if it has left since,
// means the cluster exists: nobody bootstraps a new one.
func TestBootstrapRefusesAfterAnyMemberHadState(t *testing.T) {
	old := startFakePeer(t, "old", 3, true, 7)
	logs := map[string]*syncbuf.Buffer{}
	c := &testCluster{t: t, tweaks: []func(*node.Config){captureLogs(logs, ""), func(cfg *node.Config) { cfg.Join = []string{old.addr()} }}}
	c.nodes = []*testNode{{id: "n1", dataDir: t.TempDir(), addrs: [3]string{freeAddr(t), freeAddr(t), freeAddr(t)}}}
	t.Cleanup(func() { c.stop(c.nodes[0]) })
	c.startWith(0, 3)
	// n1 sees "old" while only two servers are alive, so it has no
	// reason to decide yet; then "old" leaves and two fresh ones come.
	c.eventually(10*time.Second, "n1 sees old", func() bool { return memberStatus(c.nodes[0].n, "old") == "alive" })
	old.leave(t)
	c.eventually(10*time.Second, "n1 sees old leave", func() bool { return memberStatus(c.nodes[0].n, "old") == "left" })
	startFakePeer(t, "p1", 3, false, 0, c.nodes[0].addrs[2])
	startFakePeer(t, "p2", 3, false, 0, c.nodes[0].addrs[2])
	c.eventually(10*time.Second, "n1 refuses to bootstrap", func() bool {
		return strings.Contains(logs["n1"].String(), "not bootstrapping: a peer already has raft state")
	})
	if st := c.nodes[0].n.Status(false); st.Term != 0 || st.CommitIndex != 0 {
		t.Fatalf("n1 bootstrapped anyway: %+v", st)
	}
}

// A node restarted without --join finds its cluster again from the gossip
// addresses it saved in its data dir, and serves writes (forwarding them to
// the leader) as before.
func TestRestartWithoutJoinRejoinsGossip(t *testing.T) {
	c := newTestCluster(t, 1) // n1 bootstraps alone
	c.nodes = append(c.nodes, &testNode{id: "n2", dataDir: t.TempDir(), addrs: [3]string{freeAddr(t), freeAddr(t), freeAddr(t)}})
	c.startJoining(1) // n2 joins n1
	ctx := context.Background()
	c.eventually(10*time.Second, "n2 becomes a voter", func() bool {
		cfg, err := c.nodes[0].n.RaftConfiguration()
		return err == nil && len(cfg.Servers) == 2
	})
	c.eventually(10*time.Second, "n1 saves n2's gossip address", func() bool {
		b, err := os.ReadFile(filepath.Join(c.nodes[0].dataDir, "peers.json"))
		return err == nil && strings.Contains(string(b), c.nodes[1].addrs[2])
	})
	c.kill(0)
	c.eventually(30*time.Second, "n2 marks n1 dead", func() bool { return memberStatus(c.nodes[1].n, "n1") == "dead" })

	// Same flags as the first start, and no --join.
	c.tweaks = append(c.tweaks, func(cfg *node.Config) {
		if cfg.NodeID == "n1" {
			cfg.Join = nil
		}
	})
	c.startWith(0, 1)
	c.eventually(20*time.Second, "n1 and n2 see each other alive", func() bool {
		return memberStatus(c.nodes[0].n, "n2") == "alive" && memberStatus(c.nodes[1].n, "n1") == "alive"
	})
	// Writes through n1 must reach the leader: make it n2, so they are
	// forwarded.
	cl := c.client(0)
	if c.nodes[c.waitLeader()].id == "n1" {
		if _, err := cl.TransferLeadership(ctx, "n2"); err != nil {
			t.Fatalf("transfer leadership: %v", err)
		}
	}
	c.eventually(10*time.Second, "n1 knows the leader n2's HTTP address", func() bool {
		st := c.nodes[0].n.Status(false)
		return st.Leader.ID == "n2" && st.Leader.HTTPAddr == c.nodes[1].addrs[0]
	})
	provision(t, cl, 1, 60)
	c.checkInvariants()
}

func memberStatus(n *node.Node, id string) string {
	for _, m := range n.Members() {
		if m.ID == id {
			return m.Status
		}
	}
	return ""
}

// Nodes that had no Raft state at start tell their peers through gossip
// once they have some, so that a fresh node sees the cluster exists.
func TestGossipAdvertisesRaftStateOnceGained(t *testing.T) {
	c := newTestCluster(t, 3) // all fresh: no state at start
	obs := startFakePeer(t, "observer", 0, false, 0, c.nodes[0].addrs[2])
	c.eventually(10*time.Second, "every node's gossip metadata says it has raft state", func() bool {
		seen := 0
		for _, raw := range obs.events.seen() {
			var meta struct {
				ID    string `json:"id"`
				State bool   `json:"state"`
			}
			if json.Unmarshal(raw, &meta) == nil && strings.HasPrefix(meta.ID, "n") && meta.State {
				seen++
			}
		}
		return seen == 3
	})
}

// A voter that leaves gossip gracefully (as in a rolling restart) shows as
// "left", is reported by the leader, and stays a voter.
func TestLeftVoterReportedNotRemoved(t *testing.T) {
	logs := map[string]*syncbuf.Buffer{}
	c := newTestCluster(t, 3, captureLogs(logs, "n"))
	ld := c.waitLeader()
	tn := c.nodes[c.followers()[0]]
	_ = tn.srv.Close()
	if err := tn.n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	tn.n = nil
	c.eventually(10*time.Second, "the leader sees the follower left", func() bool {
		return memberStatus(c.nodes[ld].n, tn.id) == "left"
	})
	c.eventually(10*time.Second, "the leader reports it", func() bool {
		return strings.Contains(logs[c.nodes[ld].id].String(), "a voter is left in gossip")
	})
	cfg, err := c.nodes[ld].n.RaftConfiguration()
	if err != nil || len(cfg.Servers) != 3 {
		t.Fatalf("raft configuration after a leave: %+v, %v; want the 3 voters", cfg, err)
	}
}

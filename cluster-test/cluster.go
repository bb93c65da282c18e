package clustertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/client"
)

// Timeouts of the harness's waits. They are generous: the machines that
// run these tests are shared and small.
const (
	startTimeout  = 45 * time.Second // New: processes up and one leader agreed
	leaderTimeout = 30 * time.Second // WaitLeader after a kill or pause
	applyTimeout  = 30 * time.Second // WaitApplied
	stopTimeout   = 20 * time.Second // Stop: graceful exit after SIGTERM
	pollEvery     = 50 * time.Millisecond
)

// Option tunes a Cluster.
type Option func(*options)

type options struct {
	raftProfile string
	logLevel    string
	netns       bool
	extraArgs   []string
	binary      string
	env         []string
}

// WithRaftProfile passes --raft-profile (default or lan) to every node.
func WithRaftProfile(p string) Option { return func(o *options) { o.raftProfile = p } }

// WithLogLevel passes --log-level (debug, info, warn, error) to every node.
func WithLogLevel(l string) Option { return func(o *options) { o.logLevel = l } }

// WithNetns runs every node in a network namespace of its own, so that
// Partition, Cut, Loss and the other network faults work (see netns.go).
// It needs root, ip and iptables; where NetnsAvailable says no, New skips
// the test.
func WithNetns() Option { return func(o *options) { o.netns = true } }

// ExtraArgs appends args to every node's `tally agent` command line, after
// the harness's own flags (so a repeated flag overrides the harness's).
// Several ExtraArgs add up.
func ExtraArgs(args ...string) Option {
	return func(o *options) { o.extraArgs = append(o.extraArgs, args...) }
}

// WithBinary runs the agent binary at path instead of building ./cmd/tally
// (the chaos suite's planted-bug build).
func WithBinary(path string) Option { return func(o *options) { o.binary = path } }

// WithEnv adds KEY=VALUE variables to every agent's environment.
func WithEnv(kv ...string) Option { return func(o *options) { o.env = append(o.env, kv...) } }

// Cluster is n tally agents on loopback, driven by one test.
type Cluster struct {
	t         testing.TB
	bin       string
	dir       string
	token     string
	tokenFile string
	opts      options
	nodes     []*node
	hc        *http.Client
	net       *network // nil on loopback
}

// New builds the binary (once per process), starts n agents with
// --bootstrap-expect n and waits until every one of them agrees on one
// ready leader. Everything is killed on t.Cleanup, and with WithNetns the
// namespaces, bridge and firewall rule are removed.
func New(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("clustertest.New: n = %d", n)
	}
	c := &Cluster{
		t:    t,
		dir:  t.TempDir(),
		opts: options{raftProfile: "default", logLevel: "info"},
		hc:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
	for _, o := range opts {
		o(&c.opts)
	}
	c.bin = c.opts.binary
	if c.bin == "" {
		c.bin = Binary(t)
	}
	var ports []nodePorts
	if c.opts.netns {
		c.setupNetwork(t, n) // skips the test where namespaces cannot be made
		ports = c.net.ports()
	} else {
		ports = freePorts(t, n)
	}
	c.writeToken()
	for i := 0; i < n; i++ {
		nd := &node{
			index:      i,
			id:         fmt.Sprintf("n%d", i+1),
			httpAddr:   ports[i].http,
			raftAddr:   ports[i].raft,
			gossipAddr: ports[i].gossip,
		}
		if c.net != nil {
			nd.netns = c.net.nodes[i].ns
		}
		nd.dataDir = filepath.Join(c.dir, nd.id, "data")
		nd.logPath = filepath.Join(c.dir, nd.id+".log")
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		for _, other := range c.nodes {
			if other != nd {
				nd.join = append(nd.join, other.gossipAddr)
			}
		}
	}
	t.Cleanup(c.cleanup)
	for _, nd := range c.nodes {
		if err := c.start(nd); err != nil {
			t.Fatalf("start %s: %v", nd.id, err)
		}
	}
	c.waitLeader(startTimeout)
	return c
}

// writeToken writes the admin token file every node shares.
func (c *Cluster) writeToken() {
	c.t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	c.token = hex.EncodeToString(raw)
	c.tokenFile = filepath.Join(c.dir, "admin-token")
	if err := os.WriteFile(c.tokenFile, []byte(c.token+"\n"), 0o600); err != nil {
		c.t.Fatalf("admin token file: %v", err)
	}
}

// cleanup kills every process, fails the test for a node that died
// unbidden, and prints the logs' tails when the test failed.
func (c *Cluster) cleanup() {
	for _, nd := range c.nodes {
		if nd.exitedUnexpectedly() {
			c.t.Errorf("node %s exited without being told to: %v", nd.id, nd.exitErr())
		}
	}
	for _, nd := range c.nodes {
		nd.kill()
	}
	if c.t.Failed() {
		if c.net != nil {
			c.t.Logf("network faults at the end: %s", c.NetworkFaults())
		}
		for _, nd := range c.nodes {
			c.t.Logf("--- last lines of %s (%s) ---\n%s", nd.id, nd.logPath, tail(nd.logPath, logTailLines))
		}
		c.keepLogs()
	}
}

// N is the number of nodes, live or not.
func (c *Cluster) N() int { return len(c.nodes) }

// NodeID is node i's --node-id (n1, n2, ...).
func (c *Cluster) NodeID(i int) string { return c.node(i).id }

// Addr is node i's HTTP address, host:port.
func (c *Cluster) Addr(i int) string { return c.node(i).httpAddr }

// Addrs are every node's HTTP address.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = nd.httpAddr
	}
	return out
}

// Token is the admin bearer token.
func (c *Cluster) Token() string { return c.token }

// DataDir is node i's --data-dir (Raft log and snapshots under raft/).
func (c *Cluster) DataDir(i int) string { return c.node(i).dataDir }

// LogPath is the file that collects node i's stderr.
func (c *Cluster) LogPath(i int) string { return c.node(i).logPath }

// Client is an SDK client pinned to node i: it never fails over.
func (c *Cluster) Client(i int) *client.Client {
	c.t.Helper()
	return c.newClient([]string{c.Addr(i)})
}

// ClientAll is an SDK client that knows every node and fails over.
func (c *Cluster) ClientAll() *client.Client {
	c.t.Helper()
	return c.newClient(c.Addrs())
}

func (c *Cluster) newClient(addrs []string) *client.Client {
	c.t.Helper()
	cl, err := client.New(client.Config{Addrs: addrs, Token: c.token})
	if err != nil {
		c.t.Fatalf("client.New: %v", err)
	}
	return cl
}

func (c *Cluster) node(i int) *node {
	c.t.Helper()
	if i < 0 || i >= len(c.nodes) {
		c.t.Fatalf("clustertest: no node %d (cluster of %d)", i, len(c.nodes))
	}
	return c.nodes[i]
}

// Live reports whether node i runs and is not paused.
func (c *Cluster) Live(i int) bool { return c.node(i).live() }

// LiveNodes are the indexes of the nodes that run and are not paused.
func (c *Cluster) LiveNodes() []int {
	var out []int
	for i, nd := range c.nodes {
		if nd.live() {
			out = append(out, i)
		}
	}
	return out
}

// Kill sends SIGKILL to node i, as a crash would, and waits for it to die.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	nd := c.node(i)
	if !nd.running() {
		c.t.Fatalf("Kill(%d): %s is not running", i, nd.id)
	}
	nd.kill()
}

// Stop sends SIGTERM to node i and waits for a graceful exit; a node that
// does not exit within stopTimeout fails the test and is killed.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	nd := c.node(i)
	if !nd.running() {
		c.t.Fatalf("Stop(%d): %s is not running", i, nd.id)
	}
	if err := nd.stop(stopTimeout); err != nil {
		c.t.Errorf("Stop(%d): %v", i, err)
	}
}

// Restart starts node i again with the same flags and data directory and
// waits until its HTTP API answers. The node must have been killed or
// stopped.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.restart("Restart", i, false)
}

// StartJoining starts node i, which must be stopped, as a newcomer: without
// --bootstrap-expect, so it never takes part in forming a cluster and only
// joins the running one through --join (the leader adds alive gossip
// members as voters). This is how a node whose data was lost comes back
// (Wipe first). The node keeps joining on later Restarts. It waits until
// the node's HTTP API answers, not until it has caught up: use WaitApplied.
func (c *Cluster) StartJoining(i int) {
	c.t.Helper()
	c.restart("StartJoining", i, true)
}

func (c *Cluster) restart(what string, i int, joining bool) {
	c.t.Helper()
	nd := c.node(i)
	if nd.running() {
		c.t.Fatalf("%s(%d): %s is still running; Kill or Stop it first", what, i, nd.id)
	}
	if joining {
		nd.mu.Lock()
		nd.joining = true
		nd.mu.Unlock()
	}
	if err := c.start(nd); err != nil {
		c.t.Fatalf("%s(%d): %v", what, i, err)
	}
	err := poll(startTimeout, func() error {
		if !nd.running() {
			return fmt.Errorf("%s exited: %v", nd.id, nd.exitErr())
		}
		_, err := c.Status(i)
		return err
	})
	if err != nil {
		c.t.Fatalf("%s(%d): HTTP API never answered: %v", what, i, err)
	}
}

// Wipe deletes node i's data directory (Raft log, snapshots, signing key),
// as a lost disk would. The node must be stopped; bring it back with
// StartJoining.
func (c *Cluster) Wipe(i int) {
	c.t.Helper()
	nd := c.node(i)
	if nd.running() {
		c.t.Fatalf("Wipe(%d): %s is still running; Kill or Stop it first", i, nd.id)
	}
	if err := os.RemoveAll(nd.dataDir); err != nil {
		c.t.Fatalf("Wipe(%d): %v", i, err)
	}
}

// Pause freezes node i with SIGSTOP: it keeps its sockets but answers
// nothing, like a machine stuck in a long GC or swap storm.
func (c *Cluster) Pause(i int) {
	c.t.Helper()
	if err := c.node(i).pause(); err != nil {
		c.t.Fatalf("Pause(%d): %v", i, err)
	}
}

// Resume wakes a paused node with SIGCONT.
func (c *Cluster) Resume(i int) {
	c.t.Helper()
	if err := c.node(i).resume(); err != nil {
		c.t.Fatalf("Resume(%d): %v", i, err)
	}
}

// keepLogs copies every node's whole log to $TALLY_KEEP_LOGS/<test name>/
// when that variable is set, since the test's temp dir is removed.
func (c *Cluster) keepLogs() {
	root := os.Getenv("TALLY_KEEP_LOGS")
	if root == "" {
		return
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(c.t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Logf("keeping logs: %v", err)
		return
	}
	for _, nd := range c.nodes {
		b, err := os.ReadFile(nd.logPath)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, nd.id+".log"), b, 0o644)
		}
		if err != nil {
			c.t.Logf("keeping %s's log: %v", nd.id, err)
		}
	}
	c.t.Logf("node logs kept in %s", dir)
}

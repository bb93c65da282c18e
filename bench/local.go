package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tallyhq/tally/client"
	"github.com/tallyhq/tally/internal/agentproc"
	"github.com/tallyhq/tally/internal/freeport"
)

// LocalConfig says how to start a local cluster.
type LocalConfig struct {
	// Binary is the tally executable to run as `tally agent` (the CLI
	// passes os.Executable()).
	Binary string
	// Nodes is the cluster size: 1, 3 or 5.
	Nodes int
	// RaftProfile is passed as --raft-profile (default or lan).
	RaftProfile string
	// Env is added to each agent's environment (which has no TALLY_*
	// variables of ours: the agent would read them as flags).
	Env []string
}

// LocalCluster is a throw-away cluster on loopback: agents in a temporary
// directory on random free ports, sharing one admin token file.
type LocalCluster struct {
	cfg   LocalConfig
	dir   string
	token string
	nodes []*localNode
}

type localNode struct {
	id                             string
	httpAddr, raftAddr, gossipAddr string
	dataDir, logPath               string
	join                           []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// How long a local cluster may take to elect a ready leader, and to stop.
const (
	localStartTimeout = 60 * time.Second
	localStopTimeout  = 10 * time.Second
)

// StartLocal starts the agents and waits until they agree on a ready
// leader. On failure it stops what it started but keeps the directory, so
// the node logs it names can be read.
func StartLocal(ctx context.Context, cfg LocalConfig) (*LocalCluster, error) {
	if cfg.Nodes != 1 && cfg.Nodes != 3 && cfg.Nodes != 5 {
		return nil, fmt.Errorf("a local cluster has 1, 3 or 5 nodes, not %d", cfg.Nodes)
	}
	cfg.RaftProfile = orDefault(cfg.RaftProfile, "default")
	dir, err := os.MkdirTemp("", "tally-bench-")
	if err != nil {
		return nil, err
	}
	c := &LocalCluster{cfg: cfg, dir: dir}
	if err := c.writeToken(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	ports, err := freePorts(cfg.Nodes)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	for i, p := range ports {
		id := "n" + strconv.Itoa(i+1)
		c.nodes = append(c.nodes, &localNode{
			id: id, httpAddr: p[0], raftAddr: p[1], gossipAddr: p[2],
			dataDir: filepath.Join(dir, id), logPath: filepath.Join(dir, id+".log"),
		})
	}
	for _, n := range c.nodes {
		for _, o := range c.nodes {
			if o != n {
				n.join = append(n.join, o.gossipAddr)
			}
		}
	}
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			c.kill()
			return nil, fmt.Errorf("start %s: %w (logs in %s)", c.nodes[i].id, err, dir)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, localStartTimeout)
	defer cancel()
	if _, err := c.WaitLeader(wctx); err != nil {
		c.kill()
		return nil, fmt.Errorf("local cluster: %w (logs in %s)", err, dir)
	}
	return c, nil
}

func (c *LocalCluster) writeToken() error {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	c.token = hex.EncodeToString(raw)
	return os.WriteFile(c.tokenFile(), []byte(c.token+"\n"), 0o600)
}

func (c *LocalCluster) tokenFile() string { return filepath.Join(c.dir, "admin-token") }

// Addrs are the nodes' HTTP addresses.
func (c *LocalCluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.httpAddr
	}
	return out
}

// Token is the admin token of the cluster.
func (c *LocalCluster) Token() string { return c.token }

// Dir holds the node data and logs.
func (c *LocalCluster) Dir() string { return c.dir }

// NodeID is node i's --node-id.
func (c *LocalCluster) NodeID(i int) string { return c.nodes[i].id }

// start launches node i.
func (c *LocalCluster) start(i int) error {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	args := []string{"agent", "--node-id", n.id, "--data-dir", n.dataDir,
		"--http-addr", n.httpAddr, "--raft-addr", n.raftAddr, "--gossip-addr", n.gossipAddr,
		"--bootstrap-expect", strconv.Itoa(len(c.nodes)), "--admin-token-file", c.tokenFile(),
		"--raft-profile", c.cfg.RaftProfile, "--log-level", "warn"}
	for _, j := range n.join {
		args = append(args, "--join", j)
	}
	cmd := exec.Command(c.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := agentproc.Start(cmd, c.cfg.Env...); err != nil {
		_ = logf.Close()
		return err
	}
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	return nil
}

// running says whether node i's process is alive.
func (c *LocalCluster) running(i int) bool {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL to node i and waits for it to exit.
func (c *LocalCluster) Kill(i int) error {
	n := c.nodes[i]
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s is not running", n.id)
	}
	_ = cmd.Process.Kill()
	<-done
	return nil
}

// Restart starts node i again on its data directory.
func (c *LocalCluster) Restart(i int) error {
	if c.running(i) {
		return fmt.Errorf("%s is running", c.nodes[i].id)
	}
	return c.start(i)
}

// WaitLeader polls every running node until all of them name the same
// leader, that leader says it leads, and it serves a linearizable read
// (its Barrier is done, so it takes writes). It returns the leader's index.
func (c *LocalCluster) WaitLeader(ctx context.Context) (int, error) {
	var last error
	for {
		i, err := c.agreedLeader(ctx)
		if err == nil {
			return i, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("no agreed leader: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *LocalCluster) agreedLeader(ctx context.Context) (int, error) {
	cl, err := client.New(client.Config{Addrs: c.Addrs(), Token: c.token, RetryFor: -1, RequestTimeout: time.Second})
	if err != nil {
		return -1, err
	}
	leader := ""
	for i, n := range c.nodes {
		if !c.running(i) {
			continue
		}
		st, err := cl.Node(n.httpAddr).Status(ctx)
		if err != nil {
			return -1, err
		}
		if st.Leader.ID == "" || leader != "" && st.Leader.ID != leader {
			return -1, fmt.Errorf("%s names leader %q, others %q", n.id, st.Leader.ID, leader)
		}
		leader = st.Leader.ID
	}
	for i, n := range c.nodes {
		if n.id != leader || !c.running(i) {
			continue
		}
		lc := cl.Node(n.httpAddr)
		if _, err := lc.Audit(ctx, 0, 1, client.WithConsistency("linearizable")); err != nil {
			return -1, fmt.Errorf("leader %s not ready: %w", n.id, err)
		}
		return i, nil
	}
	return -1, errors.New("no running node leads")
}

// Stop ends every agent (SIGTERM, then SIGKILL after a grace period) and
// removes the directory.
func (c *LocalCluster) Stop() error {
	for _, n := range c.nodes {
		n.mu.Lock()
		if n.cmd != nil {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
		n.mu.Unlock()
	}
	deadline := time.After(localStopTimeout)
	for _, n := range c.nodes {
		n.mu.Lock()
		done, cmd := n.done, n.cmd
		n.mu.Unlock()
		if cmd == nil {
			continue
		}
		select {
		case <-done:
		case <-deadline:
			_ = cmd.Process.Kill()
			<-done
		}
	}
	return os.RemoveAll(c.dir)
}

// kill ends every agent at once, keeping the directory.
func (c *LocalCluster) kill() {
	for i := range c.nodes {
		if c.running(i) {
			_ = c.Kill(i)
		}
	}
}

// freePorts picks n×(http, raft, gossip) distinct free loopback addresses
// (freeport explains where from).
func freePorts(n int) ([][3]string, error) {
	addrs, err := freeport.Addrs(3 * n)
	if err != nil {
		return nil, err
	}
	out := make([][3]string, n)
	for i := range out {
		copy(out[i][:], addrs[3*i:])
	}
	return out, nil
}

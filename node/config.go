package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is everything a node needs. Start from DefaultConfig; tests shrink
// the timings with a func(*Config).
type Config struct {
	NodeID     string
	DataDir    string
	HTTPAddr   string // advertised to peers for forwarding; the listener is the caller's
	RaftAddr   string
	GossipAddr string
	// Join lists gossip addresses of existing members; any one is enough.
	Join []string
	// BootstrapExpect forms a new cluster once this many servers are seen
	// and none has Raft state. 0 never bootstraps (join an existing one).
	BootstrapExpect int
	// ClusterName goes into every token as its issuer.
	ClusterName string

	// Raft timings. The defaults favour fast failover on a LAN (about a
	// second); see docs/operations.md for the trade-off.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64

	// ApplyTimeout bounds one Raft write.
	ApplyTimeout time.Duration
	// LeaderWait is how long a request that needs the leader waits for one
	// to be elected before it is answered 503 no_leader.
	LeaderWait time.Duration
	// ClusterToken authenticates node-to-node calls (the read index); the
	// agent sets it to the admin token, which every node shares.
	ClusterToken string
	// ReapInterval is how often the leader looks for due leases.
	ReapInterval time.Duration
	// CheckpointInterval is how often the leader replicates heartbeat-
	// extended deadlines.
	CheckpointInterval time.Duration
	// ReconcileInterval is how often the leader compares gossip members with
	// the Raft configuration.
	ReconcileInterval time.Duration
	// GossipProfile is "lan" (default) or "local" (fast probes, for tests).
	GossipProfile string

	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the leader's clock; tests may replace it.
	Now func() time.Time
}

// DefaultConfig returns production defaults.
func DefaultConfig() *Config {
	return &Config{
		ClusterName:        "tally",
		HeartbeatTimeout:   400 * time.Millisecond,
		ElectionTimeout:    400 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      10 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       10240,
		ApplyTimeout:       5 * time.Second,
		LeaderWait:         3 * time.Second,
		ReapInterval:       100 * time.Millisecond,
		CheckpointInterval: 10 * time.Second,
		ReconcileInterval:  2 * time.Second,
		GossipProfile:      "lan",
		Now:                time.Now,
	}
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	if c.NodeID == "" {
		return errors.New("node id is required")
	}
	if c.DataDir == "" {
		return errors.New("data dir is required")
	}
	for name, addr := range map[string]string{"http": c.HTTPAddr, "raft": c.RaftAddr, "gossip": c.GossipAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s address %q: %w", name, addr, err)
		}
	}
	if c.BootstrapExpect < 0 {
		return errors.New("bootstrap-expect must not be negative")
	}
	if c.BootstrapExpect == 2 {
		return errors.New("bootstrap-expect 2 gives a cluster that cannot lose a node; use 1, 3 or 5")
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return errors.New("leader lease timeout must not exceed the heartbeat timeout")
	}
	if c.LeaderWait < 0 {
		return errors.New("leader wait must not be negative")
	}
	if c.ApplyTimeout <= 0 || c.ReapInterval <= 0 || c.CheckpointInterval <= 0 || c.ReconcileInterval <= 0 {
		return errors.New("apply timeout and leader intervals must be positive")
	}
	if c.GossipProfile != "lan" && c.GossipProfile != "local" {
		return errors.New(`gossip profile must be "lan" or "local"`)
	}
	return nil
}

// LANProfile tightens Raft timings for a quiet, low-latency LAN: failover
// in about 200 ms, at the price of spurious elections when a node stalls
// (overloaded host, VM migration, congested network) for more than about
// 100 ms. docs/operations.md has the measurements behind the numbers.
func LANProfile(c *Config) {
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 80 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
}

package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/tallyhq/tally/fsm"
	"github.com/tallyhq/tally/transport"
)

// Node is one running Tally server.
type Node struct {
	cfg Config
	log *slog.Logger

	fsm   *fsm.FSM
	raft  *raft.Raft
	bolt  *raftboltdb.BoltStore
	snaps raft.SnapshotStore
	trans *raft.NetworkTransport

	hadState      bool
	reportedDead  map[raft.ServerID]bool // voters reported dead; leaderLoop only
	leaderNotify  <-chan bool
	gossipChanged chan struct{}
	// keyEpochChanged wakes keyLoop when the FSM may have a new key epoch.
	keyEpochChanged chan struct{}

	gossip   *memberlist.Memberlist
	delegate *gossipDelegate
	members  *memberTable

	keys     *keyring
	lessor   *lessor
	applied  *appliedWaiter
	readIdx  *transport.ReadIndexClient
	metrics  *metrics
	httpAddr string

	// restoreMu serializes snapshot restores; reestablishCh asks the
	// leader loop to establish leadership again after one (restore.go).
	restoreMu     sync.Mutex
	reestablishCh chan chan struct{}

	// configIndex is the index of the last committed Raft configuration
	// entry this node applied (notifyingFSM.StoreConfiguration).
	configIndex atomic.Uint64

	// leaderReady is true between establishLeadership and
	// revokeLeadership: only then does this node serve leader-only requests.
	leaderReady atomic.Bool

	shutdownOnce sync.Once
	shutdownCh   chan struct{}
	wg           sync.WaitGroup
}

// New opens the data dir, starts Raft and gossip, and joins or bootstraps
// the cluster in the background. httpAddr is the address peers use to reach
// this node's API (the caller owns the HTTP listener).
func New(cfg *Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := *cfg
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// The log store is opened first: its lock is what keeps a second
	// process off this data dir, before anything else in it is touched.
	bolt, err := openLogStore(c.DataDir)
	if err != nil {
		return nil, err
	}
	keys, err := openKeyring(c.DataDir)
	if err != nil {
		_ = bolt.Close()
		return nil, err
	}
	n := &Node{
		cfg:        c,
		log:        c.Logger.With("node", c.NodeID),
		fsm:        fsm.New(),
		members:    newMemberTable(),
		keys:       keys,
		bolt:       bolt,
		lessor:     newLessor(),
		applied:    newAppliedWaiter(),
		readIdx:    &transport.ReadIndexClient{HTTP: &http.Client{Timeout: 5 * time.Second}, Token: c.ClusterToken},
		httpAddr:   c.HTTPAddr,
		shutdownCh: make(chan struct{}),

		reportedDead:    map[raft.ServerID]bool{},
		keyEpochChanged: make(chan struct{}, 1),
		reestablishCh:   make(chan chan struct{}),
	}
	n.metrics = newMetrics(c.Registerer, n)
	if err := n.startRaft(); err != nil {
		n.closeStores()
		return nil, err
	}
	if err := n.startGossip(); err != nil {
		_ = n.raft.Shutdown().Error()
		n.closeStores()
		return nil, err
	}
	n.wg.Add(3)
	go n.monitorLeadership()
	go n.discover()
	go n.keyLoop()
	return n, nil
}

func (n *Node) startRaft() error {
	c := &n.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	// Applies wait in a buffered channel, so the leader groups as many as
	// one append can carry into one disk write.
	rc.BatchApplyCh = true
	// Raft's own info lines (elections, snapshot installs) are noise in
	// normal operation and the first thing needed when chasing a bug.
	raftLevel := hclog.Warn
	if n.log.Enabled(context.Background(), slog.LevelDebug) {
		raftLevel = hclog.Info
	}
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: raftLevel, Output: slogWriter{n.log}, DisableTime: true})
	notify := make(chan bool, 16)
	rc.NotifyCh = notify
	n.leaderNotify = notify

	dir := filepath.Join(c.DataDir, "raft")
	store := n.bolt
	// Recent entries are read back from memory: the leader's replication
	// and every node's FSM apply would otherwise read each entry from bolt
	// right after writing it.
	logs, err := raft.NewLogCache(logCacheSize, store)
	if err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, rc.Logger)
	if err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	n.snaps = snaps
	stream, err := transport.ListenRaft(c.RaftAddr)
	if err != nil {
		return fmt.Errorf("raft listener: %w", err)
	}
	c.RaftAddr = stream.Addr().String()
	n.trans = raft.NewNetworkTransportWithLogger(stream, 3, 10*time.Second, rc.Logger)
	r, err := raft.NewRaft(rc, &notifyingFSM{FSM: n.fsm, applied: n.applied, keyEpoch: n.noteKeyEpoch, configIndex: &n.configIndex}, logs, store, snaps, n.trans)
	if err != nil {
		_ = n.trans.Close()
		return fmt.Errorf("raft: %w", err)
	}
	n.raft = r
	return nil
}

// openLogStore opens the Raft log and stable store in dataDir/raft. bolt
// locks its file; without a timeout a second process on the same data dir
// would wait for that lock forever, saying nothing.
func openLogStore(dataDir string) (*raftboltdb.BoltStore, error) {
	dir := filepath.Join(dataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	opts := *bbolt.DefaultOptions
	opts.Timeout = boltLockTimeout
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: &opts})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("data dir %s is in use by another tally process (its raft log is locked); stop that process or use another data dir", dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("raft log store: %w", err)
	}
	return store, nil
}

func (n *Node) closeStores() {
	if n.bolt != nil {
		_ = n.bolt.Close()
	}
}

// HTTPAddr is the advertised HTTP address.
func (n *Node) HTTPAddr() string { return n.httpAddr }

// RaftAddr is the bound Raft address.
func (n *Node) RaftAddr() string { return n.cfg.RaftAddr }

// ID is the node id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Shutdown leaves gossip, stops Raft and closes the stores. It is safe to
// call more than once.
func (n *Node) Shutdown() error { return n.stop(true) }

// Kill stops the node without leaving gossip, as a crash would (tests).
func (n *Node) Kill() { _ = n.stop(false) }

func (n *Node) stop(leave bool) error {
	var err error
	n.shutdownOnce.Do(func() {
		close(n.shutdownCh)
		if n.gossip != nil {
			if leave {
				n.leaveGossip()
			}
			_ = n.gossip.Shutdown()
		}
		err = n.raft.Shutdown().Error()
		n.wg.Wait()
		n.revokeLeadership()
		_ = n.trans.Close()
		n.closeStores()
	})
	return err
}

// FSM exposes the state machine for tests and invariant checks.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Raft exposes the raft instance for tests.
func (n *Node) Raft() *raft.Raft { return n.raft }

// errShutdown is returned by waits cut short by Shutdown.
var errShutdown = errors.New("node is shutting down")

// boltLockTimeout is how long opening the Raft log waits for another
// process to release the data dir's lock before giving up.
const boltLockTimeout = time.Second

// logCacheSize is how many recent Raft entries stay in memory: a few
// appends' worth (raft sends at most 64 per append).
const logCacheSize = 512

// slogWriter routes hclog's text lines into slog at warn level.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, every time.Duration, cond func() bool) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// raftBackend is three raw raft nodes in this process, each with its own
// bolt log store, file snapshot store and TCP transport on loopback, set
// up the way Tally's node sets them up (same timings, pool, snapshot
// cadence). Workers call Apply on the leader: no RPC front, so this is
// the ceiling of the stack, not a server anyone would ship.
type raftBackend struct {
	nodes   []*raftNode
	payload []byte
	logger  hclog.Logger
}

type raftNode struct {
	fsm   *countingFSM
	r     *raft.Raft
	store *raftboltdb.BoltStore
	trans *raft.NetworkTransport
}

// countingFSM is the trivial state machine: it counts entries.
type countingFSM struct{ n atomic.Uint64 }

func (f *countingFSM) Apply(*raft.Log) interface{} { f.n.Add(1); return nil }
func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return countSnapshot(f.n.Load()), nil
}
func (f *countingFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	f.n.Store(v)
	return nil
}

type countSnapshot uint64

func (s countSnapshot) Persist(sink raft.SnapshotSink) error {
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(s) >> (56 - 8*i))
	}
	if _, err := sink.Write(b[:]); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}
func (countSnapshot) Release() {}

// tallyTimings copies node.DefaultConfig's Raft settings (node/config.go),
// so the ceiling is measured with the timings Tally ships.
func tallyTimings(c *raft.Config) {
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
	c.SnapshotThreshold = 8192
	c.SnapshotInterval = 30 * time.Second
	c.TrailingLogs = 10240
}

func newRaftBackend(dir string, payloadSize int) (*raftBackend, error) {
	b := &raftBackend{payload: make([]byte, payloadSize)}
	for i := range b.payload {
		b.payload[i] = byte('a' + i%26)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: os.Stderr})
	b.logger = logger
	var servers []raft.Server
	for i := 0; i < 3; i++ {
		ndir := filepath.Join(dir, fmt.Sprintf("r%d", i+1))
		if err := os.MkdirAll(ndir, 0o700); err != nil {
			return nil, err
		}
		store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(ndir, "raft.db")})
		if err != nil {
			return nil, err
		}
		trans, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 10*time.Second, logger)
		if err != nil {
			_ = store.Close()
			return nil, err
		}
		b.nodes = append(b.nodes, &raftNode{store: store, trans: trans})
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("r%d", i+1)), Address: trans.LocalAddr()})
	}
	for i, n := range b.nodes {
		snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, fmt.Sprintf("r%d", i+1)), 2, logger)
		if err != nil {
			b.Close()
			return nil, err
		}
		c := raft.DefaultConfig()
		c.LocalID = servers[i].ID
		c.Logger = logger
		tallyTimings(c)
		// Every node bootstraps with the same configuration (allowed by
		// raft), so no join step is needed.
		if err := raft.BootstrapCluster(c, n.store, n.store, snaps, n.trans, raft.Configuration{Servers: servers}); err != nil {
			b.Close()
			return nil, err
		}
		n.fsm = &countingFSM{}
		r, err := raft.NewRaft(c, n.fsm, n.store, n.store, snaps, n.trans)
		if err != nil {
			b.Close()
			return nil, err
		}
		n.r = r
	}
	deadline := time.Now().Add(30 * time.Second)
	for b.leader() == nil {
		if time.Now().After(deadline) {
			b.Close()
			return nil, errors.New("raft: no leader after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b, nil
}

func (b *raftBackend) leader() *raft.Raft {
	for _, n := range b.nodes {
		if n.r != nil && n.r.State() == raft.Leader {
			return n.r
		}
	}
	return nil
}

func (b *raftBackend) Worker(int) worker { return &raftWorker{b: b} }

func (b *raftBackend) Close() error {
	// Peers shutting down one by one complain about each other: noise.
	b.logger.SetLevel(hclog.Off)
	for _, n := range b.nodes {
		if n.r != nil {
			_ = n.r.Shutdown().Error()
		}
		_ = n.trans.Close()
		_ = n.store.Close()
	}
	return nil
}

type raftWorker struct{ b *raftBackend }

func (w *raftWorker) Step(ctx context.Context) (string, error) {
	r := w.b.leader()
	if r == nil {
		time.Sleep(10 * time.Millisecond)
		return "apply", &codedError{"no_leader", errors.New("no leader")}
	}
	if err := r.Apply(w.b.payload, 5*time.Second).Error(); err != nil {
		return "apply", &codedError{"apply_failed", err}
	}
	return "apply", nil
}

func (w *raftWorker) Drain(context.Context) {}

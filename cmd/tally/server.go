package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/node"
	"github.com/tallyhq/tally/transport"
)

// addServerCommands adds `agent` and `dev`.
func addServerCommands(root *cobra.Command) {
	for _, c := range []*cobra.Command{newAgentCmd(), newDevCmd(), newDemoCmd()} {
		c.GroupID = "server"
		root.AddCommand(c)
	}
}

// hideClientFlags keeps the global --addr, --token and --json, which only
// client commands use, out of cmd's help.
func hideClientFlags(cmd *cobra.Command) {
	cmd.SetHelpFunc(func(c *cobra.Command, argv []string) {
		for _, name := range []string{"addr", "token", "json"} {
			if f := c.Root().PersistentFlags().Lookup(name); f != nil && !f.Hidden {
				f.Hidden = true
				defer func() { f.Hidden = false }()
			}
		}
		c.Root().HelpFunc()(c, argv)
	})
}

// agentFlags are the flags of `tally agent` (DESIGN.md §7).
type agentFlags struct {
	nodeID, dataDir, httpAddr, raftAddr, gossipAddr string
	join                                            []string
	bootstrapExpect                                 int
	adminTokenFile, clusterName, logLevel, profile  string
	snapshotThreshold, trailingLogs                 uint64
	snapshotInterval                                time.Duration
	heartbeatTimeout, electionTimeout               time.Duration
	pprofAddr                                       string
}

func (f *agentFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.nodeID, "node-id", "", "unique, stable name of this node (default: the host name)")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for the Raft log, snapshots and signing key (required)")
	fl.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:7101", "address of the HTTP API, also advertised to peers")
	fl.StringVar(&f.raftAddr, "raft-addr", "127.0.0.1:7201", "address for Raft traffic between nodes")
	fl.StringVar(&f.gossipAddr, "gossip-addr", "127.0.0.1:7301", "address for gossip (memberlist, TCP and UDP)")
	fl.StringSliceVar(&f.join, "join", nil, "gossip address of a member to join (repeatable; any one is enough)")
	fl.IntVar(&f.bootstrapExpect, "bootstrap-expect", 0, "form a new cluster once this many servers are seen (1, 3 or 5); 0 joins an existing one")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the admin bearer token; created 0600 with a random token if missing (default: DATA_DIR/admin-token)")
	fl.StringVar(&f.clusterName, "cluster-name", "tally", "cluster name, written into every token as its issuer")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.profile, "raft-profile", "default", "raft timings: default (failover about 1 s) or lan (faster, for a quiet LAN); see docs/operations.md")
	def := node.DefaultConfig()
	fl.Uint64Var(&f.snapshotThreshold, "snapshot-threshold", def.SnapshotThreshold, "log entries between snapshots")
	fl.DurationVar(&f.snapshotInterval, "snapshot-interval", def.SnapshotInterval, "how often to check whether a snapshot is due")
	fl.Uint64Var(&f.trailingLogs, "trailing-logs", def.TrailingLogs, "log entries kept after a snapshot, so a briefly lagging follower needs no snapshot install")
	fl.DurationVar(&f.heartbeatTimeout, "heartbeat-timeout", 0, "how long a follower waits for the leader before calling an election (default: from --raft-profile)")
	fl.StringVar(&f.pprofAddr, "pprof-addr", "", "serve Go's /debug/pprof/ profiles on this address (off by default; bind it to localhost)")
	fl.DurationVar(&f.electionTimeout, "election-timeout", 0, "how long a candidate waits for votes before trying again (default: from --raft-profile)")
}

func (f *agentFlags) config(logger *slog.Logger, reg prometheus.Registerer) (*node.Config, error) {
	if f.dataDir == "" {
		return nil, errors.New("--data-dir is required")
	}
	if f.nodeID == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("--node-id not given and no host name: %w", err)
		}
		f.nodeID = h
	}
	c := node.DefaultConfig()
	c.NodeID, c.DataDir = f.nodeID, f.dataDir
	c.HTTPAddr, c.RaftAddr, c.GossipAddr = f.httpAddr, f.raftAddr, f.gossipAddr
	c.Join, c.BootstrapExpect, c.ClusterName = f.join, f.bootstrapExpect, f.clusterName
	c.Logger, c.Registerer = logger, reg
	if f.snapshotThreshold > 0 {
		c.SnapshotThreshold = f.snapshotThreshold
	}
	if f.snapshotInterval > 0 {
		c.SnapshotInterval = f.snapshotInterval
	}
	if f.trailingLogs > 0 {
		c.TrailingLogs = f.trailingLogs
	}
	switch f.profile {
	case "default":
	case "lan":
		node.LANProfile(c)
	default:
		return nil, fmt.Errorf("--raft-profile must be default or lan, not %q", f.profile)
	}
	if f.heartbeatTimeout > 0 {
		c.HeartbeatTimeout = f.heartbeatTimeout
		// The leader lease must stay below the heartbeat timeout.
		c.LeaderLeaseTimeout = min(c.LeaderLeaseTimeout, f.heartbeatTimeout/2)
	}
	if f.electionTimeout > 0 {
		c.ElectionTimeout = f.electionTimeout
	}
	return c, c.Validate()
}

func newAgentCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a Tally server node",
		Long: `Run one node of a Tally cluster: Raft, gossip discovery and the HTTP API.

Start three (or five) agents with --bootstrap-expect 3 and --join pointing at
any one of the others; they find each other by gossip and form the cluster
themselves. Give every node the same --admin-token-file contents.

Every flag has an environment form: --data-dir is TALLY_DATA_DIR, and so on.`,
		Example: `  tally agent --node-id n1 --data-dir /var/lib/tally \
    --http-addr 10.0.0.1:7101 --raft-addr 10.0.0.1:7201 --gossip-addr 10.0.0.1:7301 \
    --bootstrap-expect 3 --join 10.0.0.2:7301 --admin-token-file /etc/tally/admin-token`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), &f, nil)
		},
	}
	f.register(cmd)
	hideClientFlags(cmd)
	return cmd
}

// runAgent runs a node until SIGINT/SIGTERM or ctx ends. ready, if set, is
// called with the HTTP address once the node serves.
func runAgent(ctx context.Context, f *agentFlags, ready func(httpAddr, adminToken string)) error {
	// Every flag is checked before anything touches the disk, so a bad
	// command line leaves no admin-token file or data dir behind.
	logger, err := newLogger(f.logLevel)
	if err != nil {
		return usageErr(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg, err := f.config(logger, reg)
	if err != nil {
		return usageErr(err)
	}
	if f.adminTokenFile == "" {
		f.adminTokenFile = filepath.Join(f.dataDir, "admin-token")
	}
	adminToken, err := loadOrCreateAdminToken(f.adminTokenFile)
	if err != nil {
		return err
	}
	cfg.ClusterToken = adminToken
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	cfg.HTTPAddr = ln.Addr().String()
	n, err := node.New(cfg)
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{
		Handler: transport.NewServer(transport.Config{
			Backend: n, AdminToken: adminToken, Registerer: reg, Gatherer: reg, Logger: logger,
			// Snapshot uploads go beside the Raft data, where the disk has
			// room for a copy of the state, not to a small /tmp.
			SpoolDir: cfg.DataDir,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if f.pprofAddr != "" {
		// Profiles only on their own listener, never on the API's.
		go func() {
			logger.Warn("pprof server stopped", "err", http.ListenAndServe(f.pprofAddr, pprofMux()))
		}()
	}
	logger.Info("tally agent started", "node", cfg.NodeID, "http", cfg.HTTPAddr, "raft", n.RaftAddr(),
		"gossip", n.GossipAddr(), "data_dir", cfg.DataDir, "admin_token_file", f.adminTokenFile)
	if ready != nil {
		ready(cfg.HTTPAddr, adminToken)
	}

	sig, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-sig.Done():
		logger.Info("shutting down")
	case err := <-errc:
		logger.Error("http server stopped", "err", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return n.Shutdown()
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// loadOrCreateAdminToken reads the token file, or creates it 0600 with 32
// random bytes. The token itself is never logged.
func loadOrCreateAdminToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", fmt.Errorf("admin token in %s is shorter than 16 characters", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("admin token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadOrCreateAdminToken(path) // another node sharing the file won
		}
		return "", fmt.Errorf("admin token: %w", err)
	}
	defer fh.Close()
	if _, err := fh.WriteString(tok + "\n"); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return tok, nil
}

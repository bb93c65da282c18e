package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
)

// statusTimeout bounds the wait for each node in `tally status`.
const statusTimeout = 3 * time.Second

func addClusterCommands(root *cobra.Command, a *app) {
	operator := group("operator", "Operate the Raft cluster: peers, leadership, snapshots",
		"Commands that change or save the cluster itself. They need the admin token.")
	raft := group("raft", "List and remove Raft peers, transfer leadership",
		"Inspect and change the Raft configuration.")
	raft.AddCommand(listPeersCmd(a), removePeerCmd(a), transferLeaderCmd(a))
	snapshot := group("snapshot", "Save and restore snapshots of the cluster state",
		"Save the whole entitlement state to a file, or replace the state of every node with one.")
	snapshot.AddCommand(snapshotSaveCmd(a), snapshotRestoreCmd(a))
	operator.AddCommand(raft, snapshot, membersCmd(a))

	for _, c := range []*cobra.Command{statusCmd(a), membersCmd(a), operator} {
		c.GroupID = "cluster"
		root.AddCommand(c)
	}
}

// nodeStatus is one row of `tally status`.
type nodeStatus struct {
	Addr   string      `json:"addr"`
	Status *api.Status `json:"status,omitempty"`
	Error  string      `json:"error,omitempty"`
}

func statusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show every node's Raft state",
		Long: `Ask every address in --addr for its own status (no failover: each node
answers for itself) and print one row per node: its id, state, the leader it
follows, term, commit and applied indexes, and last contact with the leader.
Nodes that do not answer are shown as unreachable, and the command then
exits 1.`,
		Example: `  tally status --addr n1:7101,n2:7101,n3:7101`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			addrs := splitAddrs(a.addr)
			c, err := client.New(client.Config{Addrs: addrs, Token: a.token, RetryFor: -1, RequestTimeout: statusTimeout})
			if err != nil {
				return usageErr(err)
			}
			rows := make([]nodeStatus, len(addrs))
			var wg sync.WaitGroup
			for i, addr := range addrs {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(cmd.Context(), statusTimeout)
					defer cancel()
					rows[i].Addr = addr
					st, err := c.Node(addr).Status(ctx)
					if err != nil {
						rows[i].Error = err.Error()
						return
					}
					rows[i].Status = st
				})
			}
			wg.Wait()
			err = a.emit(rows, func(w io.Writer) {
				row(w, "NODE_ID", "ADDR", "STATE", "LEADER", "TERM", "COMMIT", "APPLIED", "LAST_CONTACT")
				for _, r := range rows {
					s := r.Status
					if s == nil {
						row(w, "-", r.Addr, "unreachable", "-", "-", "-", "-", "-")
						continue
					}
					contact := "-"
					if s.State != "leader" {
						contact = (time.Duration(s.LastContactMS) * time.Millisecond).String()
					}
					row(w, s.NodeID, r.Addr, s.State, s.Leader.ID, s.Term, s.CommitIndex, s.AppliedIndex, contact)
				}
			})
			if err != nil {
				return err
			}
			down := 0
			for _, r := range rows {
				if r.Status == nil {
					down++
					if !a.json {
						fmt.Fprintf(a.stderr, "%s: %s\n", r.Addr, r.Error)
					}
				}
			}
			if down > 0 {
				return fmt.Errorf("%d of %d nodes unreachable", down, len(rows))
			}
			return nil
		},
	}
}

func membersCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "members",
		Short:   "List the nodes gossip knows and their health",
		Example: `  tally members`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.Members(cmd.Context())
			if err != nil {
				return err
			}
			return a.emit(list, func(w io.Writer) {
				row(w, "ID", "STATUS", "HTTP", "RAFT", "GOSSIP")
				for _, m := range list.Members {
					row(w, m.ID, m.Status, m.HTTPAddr, m.RaftAddr, m.GossipAddr)
				}
			})
		},
	}
}

func listPeersCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list-peers",
		Short:   "List the Raft voters and non-voters",
		Example: `  tally operator raft list-peers`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			conf, err := c.RaftConfiguration(cmd.Context())
			if err != nil {
				return err
			}
			return a.emit(conf, func(w io.Writer) {
				row(w, "ID", "ADDRESS", "SUFFRAGE", "LEADER")
				for _, s := range conf.Servers {
					leader := ""
					if s.Leader {
						leader = "yes"
					}
					row(w, s.ID, s.Address, s.Suffrage, leader)
				}
			})
		},
	}
}

func removePeerCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove-peer ID",
		Short: "Remove a node from the Raft configuration",
		Long: `Remove a node (by its --node-id) from the Raft configuration, for a node
that is gone for good. The remaining nodes must still form a quorum.`,
		Example: `  tally operator raft remove-peer n3`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RemovePeer(cmd.Context(), argv[0]); err != nil {
				return err
			}
			return a.emit(emptyObject{}, func(w io.Writer) {
				fmt.Fprintf(w, "Removed peer %s from the Raft configuration\n", argv[0])
			})
		},
	}
}

func transferLeaderCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leader [ID]",
		Short: "Hand leadership to another node",
		Long: `Ask the leader to hand leadership to node ID, or to a node Raft picks when
no ID is given. Prints the status of the node that answered afterwards.`,
		Example: `  tally operator raft transfer-leader
  tally operator raft transfer-leader n2`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := ""
			if len(argv) == 1 {
				id = argv[0]
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.TransferLeadership(cmd.Context(), id)
			if err != nil {
				return err
			}
			return a.emit(st, func(w io.Writer) {
				fmt.Fprintf(w, "Leadership transferred: node %s is %s, leader is %s (term %d)\n",
					st.NodeID, st.State, st.Leader.ID, st.Term)
			})
		},
	}
}

func snapshotSaveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "save FILE",
		Short: "Save a snapshot of the cluster state to FILE",
		Long: `Stream a Raft snapshot from the cluster into FILE. The file is written under
a temporary name and renamed when complete, so FILE is never half-written.`,
		Example: `  tally operator snapshot save backup-2026-01-31.snap`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			n, err := saveSnapshot(cmd.Context(), c, argv[0])
			if err != nil {
				return err
			}
			out := struct {
				File  string `json:"file"`
				Bytes int64  `json:"bytes"`
			}{argv[0], n}
			return a.emit(out, func(w io.Writer) { fmt.Fprintf(w, "Saved snapshot to %s (%d bytes)\n", argv[0], n) })
		},
	}
}

func snapshotRestoreCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the state of every node with a saved snapshot",
		Long: `Upload FILE, a snapshot written by "tally operator snapshot save", and make it
the whole entitlement state of every node: products, policies, licenses,
live leases, the audit chain and the registered signing keys all become what
they were when the snapshot was saved. Everything that happened since is
gone. It is meant for disaster recovery; like remove-peer it acts at once,
without asking.

Any node accepts the upload (a follower passes it to the leader). The leader
decodes the whole file first: a file that is not a complete snapshot is
refused and nothing changes. While the leader restores, writes answer
503 no_leader and clients retry; afterwards every lease in the snapshot is
live again for one full TTL from now, so desktops that still heartbeat keep
their seats. The bytes sent are shown on stderr while the file uploads.`,
		Example: `  tally operator snapshot restore backup-2026-01-31.snap`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			f, err := os.Open(argv[0])
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			p := newUploadProgress(a.stderr, st.Size())
			res, err := c.RestoreSnapshot(cmd.Context(), f, st.Size(), p.sent)
			p.done()
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) {
				fmt.Fprintf(w, "Restored %s (%d bytes) on every node: %d licenses, %d live leases, %d audit records; state index %d (saved at %d), took %s\n",
					argv[0], res.Bytes, res.Licenses, res.Leases, res.AuditRecords, res.Index, res.SavedIndex,
					time.Duration(res.DurationMS)*time.Millisecond)
			})
		},
	}
}

// uploadProgress shows the bytes sent: one line redrawn in place on a
// terminal, otherwise a line every few seconds.
type uploadProgress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	total int64
	last  time.Time
	n     int64
	shown bool
}

func newUploadProgress(w io.Writer, total int64) *uploadProgress {
	return &uploadProgress{w: w, tty: isTerminal(w), total: total}
}

func (p *uploadProgress) sent(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n == p.n && p.shown {
		return
	}
	p.n = n
	every := 5 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if n < p.total && time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	p.show()
}

func (p *uploadProgress) show() {
	pct := 100.0
	if p.total > 0 {
		pct = float64(p.n) * 100 / float64(p.total)
	}
	line := fmt.Sprintf("restore: sent %s of %s (%.0f%%)", mib(p.n), mib(p.total), pct)
	if p.n == p.total {
		line += "; the leader is restoring"
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%-79s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.shown = true
}

// done ends the redrawn line.
func (p *uploadProgress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		fmt.Fprintln(p.w)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// saveSnapshot writes the snapshot to a temporary file next to path and
// renames it into place once complete and synced.
func saveSnapshot(ctx context.Context, c *client.Client, path string) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tally-snapshot-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	cw := &countWriter{w: tmp}
	err = c.Snapshot(ctx, cw)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
)

// auditRetryFor bounds the retries of one audit read on one node: long
// enough for a node that is busy, short enough that a dead one is reported
// soon.
const auditRetryFor = 5 * time.Second

// nodeChain is one node's row of `tally audit verify`.
type nodeChain struct {
	Addr      string `json:"addr"`
	NodeID    string `json:"node_id,omitempty"`
	Records   uint64 `json:"records"`
	HeadIndex uint64 `json:"head_index"`
	HeadHash  string `json:"head_hash,omitempty"`
	// BrokenAt is the first index where the chain does not link; Broken
	// says why.
	BrokenAt uint64 `json:"broken_at,omitempty"`
	Broken   string `json:"broken,omitempty"`
	// Behind is how many records fewer this node holds than the longest
	// chain: a lagging node, which is fine while it catches up.
	Behind uint64 `json:"behind,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (n *nodeChain) name() string {
	if n.NodeID != "" {
		return n.NodeID
	}
	return n.Addr
}

// chainDivergence is the first index where two nodes hold different records.
type chainDivergence struct {
	Index     uint64   `json:"index"`
	Reference string   `json:"reference"` // the node the others are compared with
	Differ    []string `json:"differ"`
}

// auditVerifyReport is the answer of `tally audit verify`.
type auditVerifyReport struct {
	OK       bool             `json:"ok"`
	Nodes    []*nodeChain     `json:"nodes"`
	Diverged *chainDivergence `json:"diverged,omitempty"`
}

// chainSource is one node to verify: its row and the pager over its copy.
type chainSource struct {
	row   *nodeChain
	pager *auditPager
}

// verifyChains reads every source's chain in lockstep, one position at a
// time: each chain is checked link by link, and the records at the same
// position are compared across nodes. Memory stays at one page per node
// however long the chains are. progress is called every
// auditProgressEvery positions.
func verifyChains(ctx context.Context, sources []chainSource, progress func(records uint64, nodes int)) *auditVerifyReport {
	rep := &auditVerifyReport{}
	checks := make([]chainCheck, len(sources))
	live := make([]bool, len(sources))
	for i, s := range sources {
		rep.Nodes = append(rep.Nodes, s.row)
		checks[i].start = 1
		live[i] = s.row.Error == ""
	}
	for pos := uint64(1); ; pos++ {
		var here []positioned
		for i, s := range sources {
			if !live[i] {
				continue
			}
			rec, err := s.pager.next(ctx)
			if err != nil {
				s.row.Error = err.Error()
				live[i] = false
				continue
			}
			if rec == nil {
				live[i] = false
				continue
			}
			checks[i].add(*rec)
			here = append(here, positioned{s.row.name(), rec})
		}
		if len(here) == 0 {
			break
		}
		if rep.Diverged == nil {
			rep.Diverged = compareAt(pos, here)
		}
		if pos%auditProgressEvery == 0 && progress != nil {
			progress(pos, len(here))
		}
	}

	var longest uint64
	for i, s := range sources {
		c := &checks[i]
		s.row.Records = c.count
		if c.count > 0 {
			s.row.HeadIndex, s.row.HeadHash = c.head.Index, c.head.Hash
		}
		s.row.BrokenAt, s.row.Broken = c.brokenAt, c.broken
		if s.row.Error == "" {
			longest = max(longest, c.count)
		}
	}
	rep.OK = len(sources) > 0 && rep.Diverged == nil
	for _, s := range sources {
		if s.row.Error == "" {
			s.row.Behind = longest - s.row.Records
		}
		if s.row.Error != "" || s.row.BrokenAt != 0 {
			rep.OK = false
		}
	}
	return rep
}

// positioned is one node's record at the position being compared.
type positioned struct {
	node string
	rec  *api.AuditRecord
}

// compareAt returns nil when every node holds the same record at pos, and
// otherwise names the nodes that differ from the largest group agreeing
// (the first such group on a tie), so a single tampered node is the one
// named whatever its place in --addr.
func compareAt(pos uint64, here []positioned) *chainDivergence {
	var groups [][]positioned
	for _, p := range here {
		placed := false
		for g := range groups {
			if sameRecord(groups[g][0].rec, p.rec) {
				groups[g] = append(groups[g], p)
				placed = true
				break
			}
		}
		if !placed {
			groups = append(groups, []positioned{p})
		}
	}
	if len(groups) < 2 {
		return nil
	}
	ref := 0
	for g := range groups {
		if len(groups[g]) > len(groups[ref]) {
			ref = g
		}
	}
	d := &chainDivergence{Index: pos, Reference: groups[ref][0].node}
	for g := range groups {
		if g == ref {
			continue
		}
		for _, p := range groups[g] {
			d.Differ = append(d.Differ, p.node)
		}
	}
	return d
}

func auditVerifyCmd(a *app) *cobra.Command {
	var withMembers bool
	var pageSize int
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove every node's copy of the audit chain unbroken and identical",
		Long: `Read each node's own copy of the audit chain (a stale read: the node answers
from its memory and never forwards it), recompute every link with the state
machine's hashing, and compare the nodes record by record.

The nodes are those in --addr plus, with --members (the default), every node
the cluster's gossip reports. For each node it prints the record count and
head hash, and the first index where its chain breaks (a hash that does not
match the record, or a prev_hash that is not the previous hash); then the
first index where two nodes hold different records.

It exits 0 when every chain verifies and all agree on their common prefix: a
node that holds fewer records is lagging, which is fine, and is reported as
such. It exits 1 when a chain is broken, two nodes differ, or a node cannot
be read. Progress goes to stderr every 10,000 records.`,
		Example: `  tally audit verify --addr n1:7101,n2:7101,n3:7101
  tally audit verify --members=false --json`,
		Args: args(cobra.NoArgs),
	}
	cmd.Flags().BoolVar(&withMembers, "members", true, "also verify every node the cluster's gossip reports")
	cmd.Flags().IntVar(&pageSize, "page-size", defaultAuditPage, "records per audit read (1 to 10000)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if pageSize < 1 || pageSize > maxAuditPage {
			return usagef("--page-size must be between 1 and %d", maxAuditPage)
		}
		addrs := splitAddrs(a.addr)
		base, err := client.New(client.Config{Addrs: addrs, Token: a.token, RetryFor: auditRetryFor})
		if err != nil {
			return usageErr(err)
		}
		ctx := cmd.Context()
		sources := a.auditSources(ctx, base, addrs, withMembers, pageSize)
		rep := verifyChains(ctx, sources, func(n uint64, nodes int) {
			fmt.Fprintf(a.stderr, "audit verify: %d records checked on %d %s\n", n, nodes, plural(nodes, "node", "nodes"))
		})
		if err := a.emit(rep, func(w io.Writer) { printVerifyReport(w, rep) }); err != nil {
			return err
		}
		if !rep.OK {
			return &exitCodeError{code: exitError, err: fmt.Errorf("audit chain NOT verified: %s", verifyProblems(rep))}
		}
		return nil
	}
	return cmd
}

// auditSources names the nodes to verify: every --addr (asked for its node
// id, so that two addresses of one node count once), then every node gossip
// reports that is not among them and has not left.
func (a *app) auditSources(ctx context.Context, base *client.Client, addrs []string, withMembers bool, pageSize int) []chainSource {
	rows := make([]*nodeChain, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		rows[i] = &nodeChain{Addr: addr}
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, statusTimeout)
			defer cancel()
			st, err := base.Node(addr).Status(sctx)
			if err != nil {
				rows[i].Error = "unreachable: " + err.Error()
				return
			}
			rows[i].NodeID = st.NodeID
		})
	}
	wg.Wait()

	var sources []chainSource
	seen := map[string]string{} // node id -> address checked
	add := func(row *nodeChain) {
		if row.NodeID != "" {
			if first, dup := seen[row.NodeID]; dup {
				fmt.Fprintf(a.stderr, "audit verify: %s and %s are both node %s; verifying it once\n", first, row.Addr, row.NodeID)
				return
			}
			seen[row.NodeID] = row.Addr
		}
		sources = append(sources, chainSource{row: row, pager: &auditPager{
			c: base.Node(row.Addr), pageSize: pageSize, consistency: api.ConsistencyStale, nodeID: row.NodeID,
		}})
	}
	for _, row := range rows {
		add(row)
	}
	if !withMembers {
		return sources
	}
	list, err := base.Members(ctx)
	if err != nil {
		fmt.Fprintf(a.stderr, "audit verify: cannot list the cluster's members (%v); verifying --addr only\n", err)
		return sources
	}
	scheme := "http://"
	if strings.HasPrefix(base.Addrs()[0], "https://") {
		scheme = "https://"
	}
	for _, m := range list.Members {
		if _, known := seen[m.ID]; known || m.Status == "left" || m.HTTPAddr == "" {
			continue
		}
		add(&nodeChain{Addr: scheme + m.HTTPAddr, NodeID: m.ID})
	}
	return sources
}

func printVerifyReport(w io.Writer, rep *auditVerifyReport) {
	row(w, "NODE", "ADDR", "RECORDS", "HEAD_INDEX", "HEAD_HASH", "CHAIN")
	for _, n := range rep.Nodes {
		if n.Error != "" && n.Records == 0 {
			row(w, n.NodeID, n.Addr, "-", "-", "-", n.Error)
			continue
		}
		state := "verified"
		switch {
		case n.Error != "":
			state = "read failed after " + fmt.Sprint(n.Records) + " records: " + n.Error
		case n.BrokenAt != 0:
			state = fmt.Sprintf("BROKEN at index %d: %s", n.BrokenAt, n.Broken)
		case n.Behind > 0:
			state = fmt.Sprintf("verified, %d records behind (lagging)", n.Behind)
		}
		row(w, n.NodeID, n.Addr, n.Records, n.HeadIndex, n.HeadHash, state)
	}
	fmt.Fprintln(w)
	if d := rep.Diverged; d != nil {
		fmt.Fprintf(w, "Nodes first differ at index %d: %s %s a different record than %s.\n", d.Index, strings.Join(d.Differ, ", "), plural(len(d.Differ), "holds", "hold"), d.Reference)
	}
	if !rep.OK {
		return
	}
	var longest uint64
	var lagging []string
	for _, n := range rep.Nodes {
		longest = max(longest, n.Records)
		if n.Behind > 0 {
			lagging = append(lagging, fmt.Sprintf("%s by %d", n.name(), n.Behind))
		}
	}
	fmt.Fprintf(w, "Audit chain verified on %d %s: %d records, every link intact, identical on the common prefix.\n", len(rep.Nodes), plural(len(rep.Nodes), "node", "nodes"), longest)
	if len(lagging) > 0 {
		fmt.Fprintf(w, "Lagging (fine: still applying the log): %s.\n", strings.Join(lagging, ", "))
	}
}

// verifyProblems sums up why a verify failed, for the error line.
func verifyProblems(rep *auditVerifyReport) string {
	var p []string
	for _, n := range rep.Nodes {
		switch {
		case n.Error != "":
			p = append(p, n.name()+" could not be read")
		case n.BrokenAt != 0:
			p = append(p, fmt.Sprintf("%s's chain breaks at index %d", n.name(), n.BrokenAt))
		}
	}
	if d := rep.Diverged; d != nil {
		p = append(p, fmt.Sprintf("%s %s from %s at index %d", strings.Join(d.Differ, ", "), plural(len(d.Differ), "differs", "differ"), d.Reference, d.Index))
	}
	if len(rep.Nodes) == 0 {
		p = append(p, "no node to verify")
	}
	return strings.Join(p, "; ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

package clustertest

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally/api"
)

// WaitLeader waits until every live node names the same leader, that
// leader is live and says it leads, and it serves a linearizable read (so
// it has passed its Barrier and takes writes). It returns the leader's index.
func (c *Cluster) WaitLeader() int {
	c.t.Helper()
	return c.waitLeader(leaderTimeout)
}

// Leader is the index of the leader every live node agrees on, waiting for
// one if an election is under way.
func (c *Cluster) Leader() int {
	c.t.Helper()
	return c.waitLeader(leaderTimeout)
}

// Followers are the live nodes other than the agreed leader.
func (c *Cluster) Followers() []int {
	c.t.Helper()
	leader := c.waitLeader(leaderTimeout)
	var out []int
	for _, i := range c.LiveNodes() {
		if i != leader {
			out = append(out, i)
		}
	}
	return out
}

// WaitLeaderAmong is WaitLeader for some of the nodes: it waits until the
// live ones among them agree on a leader that is one of them, and returns
// its index. Use it for the majority side of a partition, whose view the
// cut-off nodes do not share.
func (c *Cluster) WaitLeaderAmong(nodes ...int) int {
	c.t.Helper()
	for _, i := range nodes {
		c.node(i)
	}
	return c.waitLeaderAmong(leaderTimeout, nodes)
}

func (c *Cluster) waitLeader(timeout time.Duration) int {
	c.t.Helper()
	return c.waitLeaderAmong(timeout, nil)
}

// waitLeaderAmong waits for the leader of nodes; nil means all nodes.
func (c *Cluster) waitLeaderAmong(timeout time.Duration, nodes []int) int {
	c.t.Helper()
	leader := -1
	err := poll(timeout, func() error {
		var err error
		leader, err = c.agreedLeader(nodes)
		return err
	})
	if err != nil {
		c.t.Fatalf("no agreed leader within %s: %v", timeout, err)
	}
	return leader
}

// agreedLeader returns the leader the live ones of nodes (nil: all nodes)
// name, if it is one of them, or why there is none.
func (c *Cluster) agreedLeader(nodes []int) (int, error) {
	var live []int
	for _, i := range c.LiveNodes() {
		if nodes == nil || slices.Contains(nodes, i) {
			live = append(live, i)
		}
	}
	if len(live) == 0 {
		return -1, errors.New("no live node")
	}
	leaderID := ""
	var views []string
	for _, i := range live {
		if !c.nodes[i].running() {
			return -1, fmt.Errorf("%s exited: %v", c.nodes[i].id, c.nodes[i].exitErr())
		}
		st, err := c.Status(i)
		if err != nil {
			return -1, err
		}
		views = append(views, fmt.Sprintf("%s:%s(leader=%q term=%d)", st.NodeID, st.State, st.Leader.ID, st.Term))
		if st.Leader.ID == "" {
			return -1, fmt.Errorf("%s knows no leader; views so far %s", st.NodeID, strings.Join(views, " "))
		}
		if leaderID == "" {
			leaderID = st.Leader.ID
		} else if st.Leader.ID != leaderID {
			return -1, fmt.Errorf("nodes disagree on the leader: %s", strings.Join(views, " "))
		}
	}
	li := c.indexOf(leaderID)
	if li < 0 || !slices.Contains(live, li) {
		return -1, fmt.Errorf("named leader %q is not a live node: %s", leaderID, strings.Join(views, " "))
	}
	st, err := c.Status(li)
	if err != nil {
		return -1, err
	}
	if st.State != "leader" {
		return -1, fmt.Errorf("named leader %s says it is %s", leaderID, st.State)
	}
	// A linearizable read needs the leader's Barrier to be done.
	var audit api.AuditList
	if err := c.Call(li, http.MethodGet, "/v1/audit?limit=1&consistency=linearizable", nil, &audit); err != nil {
		return -1, fmt.Errorf("leader %s not ready: %w", leaderID, err)
	}
	return li, nil
}

func (c *Cluster) indexOf(id string) int {
	for i, nd := range c.nodes {
		if nd.id == id {
			return i
		}
	}
	return -1
}

// WaitApplied waits until every live node has applied index idx.
func (c *Cluster) WaitApplied(idx uint64) {
	c.t.Helper()
	err := poll(applyTimeout, func() error {
		for _, i := range c.LiveNodes() {
			st, err := c.Status(i)
			if err != nil {
				return err
			}
			if st.AppliedIndex < idx {
				return fmt.Errorf("%s applied %d, want >= %d", st.NodeID, st.AppliedIndex, idx)
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("WaitApplied(%d): %v", idx, err)
	}
}

// MaxCommitIndex is the highest commit index any live node reports.
func (c *Cluster) MaxCommitIndex() uint64 {
	c.t.Helper()
	var max uint64
	for _, i := range c.LiveNodes() {
		st, err := c.Status(i)
		if err != nil {
			c.t.Fatalf("status of %s: %v", c.NodeID(i), err)
		}
		if st.CommitIndex > max {
			max = st.CommitIndex
		}
	}
	return max
}

package chaos

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	clustertest "github.com/tallyhq/tally/cluster-test"
)

// leaderMonitor polls every node's status and remembers who claimed to
// lead in which term: two leaders in one term break Raft's election safety.
type leaderMonitor struct {
	c       *clustertest.Cluster
	mu      sync.Mutex
	leaders map[uint64]map[string]bool // term → node ids that said "leader"
}

func newLeaderMonitor(c *clustertest.Cluster) *leaderMonitor {
	return &leaderMonitor{c: c, leaders: map[uint64]map[string]bool{}}
}

func (m *leaderMonitor) run(ctx context.Context) {
	for ctx.Err() == nil {
		for i := 0; i < m.c.N(); i++ {
			st, err := m.c.Status(i)
			if err != nil || st.State != "leader" {
				continue
			}
			// Raft sets a new term a moment before it steps down, so one
			// status read can pair "leader" with the next term. A claim
			// counts only if a second read repeats it.
			again, err := m.c.Status(i)
			if err != nil || again.State != "leader" || again.Term != st.Term {
				continue
			}
			m.mu.Lock()
			if m.leaders[st.Term] == nil {
				m.leaders[st.Term] = map[string]bool{}
			}
			m.leaders[st.Term][st.NodeID] = true
			m.mu.Unlock()
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

func (m *leaderMonitor) violations() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for term, ids := range m.leaders {
		if len(ids) > 1 {
			var names []string
			for id := range ids {
				names = append(names, id)
			}
			sort.Strings(names)
			out = append(out, fmt.Sprintf("term %d had leaders %v", term, names))
		}
	}
	return out
}

// terms is how many terms saw a leader.
func (m *leaderMonitor) terms() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.leaders)
}

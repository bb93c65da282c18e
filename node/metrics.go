package node

import (
	"math"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	isLeader          prometheus.Gauge
	applyLatency      prometheus.Histogram
	expired           prometheus.Counter
	staleReads        prometheus.Counter
	linearizableReads prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, n *Node) *metrics {
	m := &metrics{
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_raft_leader", Help: "1 while this node is the Raft leader.",
		}),
		applyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_raft_apply_duration_seconds",
			Help:    "Time from proposing a command to its result on the leader.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_leases_expired_total", Help: "Leases this node expired as leader.",
		}),
		staleReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_reads_total", Help: "Reads served, by consistency.", ConstLabels: prometheus.Labels{"consistency": "stale"},
		}),
		linearizableReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_reads_total", Help: "Reads served, by consistency.", ConstLabels: prometheus.Labels{"consistency": "linearizable"},
		}),
	}
	reg.MustRegister(m.isLeader, m.applyLatency, m.expired, m.staleReads, m.linearizableReads,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tally_leases_live", Help: "Live leases in this node's state.",
		}, func() float64 { return float64(n.fsm.LeaseCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tally_raft_applied_index", Help: "Last Raft index applied to the state machine.",
		}, func() float64 { return float64(n.fsm.AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tally_raft_term", Help: "Current Raft term.",
		}, func() float64 { return float64(n.raft.CurrentTerm()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tally_raft_last_contact_seconds",
			Help: "Time since this node last heard from the leader (read staleness bound); 0 on the leader, +Inf if never.",
		}, func() float64 {
			ms := n.lastContactMS()
			if ms < 0 {
				// Never heard from a leader: its stale reads are as stale
				// as they get, and "above a second" alerts must fire.
				return math.Inf(1)
			}
			return float64(ms) / 1000
		}),
	)
	// tally_raft_state says which of the four states this node is in (1)
	// and not in (0): tally_raft_leader cannot tell a follower from a
	// candidate, and a node stuck as candidate has lost its quorum.
	for _, s := range []raft.RaftState{raft.Leader, raft.Follower, raft.Candidate, raft.Shutdown} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "tally_raft_state",
			Help:        "1 for the Raft state this node is in (leader, follower, candidate, shutdown), 0 for the others.",
			ConstLabels: prometheus.Labels{"state": stateName(s)},
		}, func() float64 { return boolGauge(n.raft.State() == s) }))
	}
	return m
}

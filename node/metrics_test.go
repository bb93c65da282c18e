package node_test

import (
	"context"
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/node"
)

// metricValue gathers reg and returns the value of the series name{labels}:
// a gauge's or counter's value, a histogram's sample count.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// Each metric DESIGN §4 names is served from the node's injected registry
// and moves with what the node does.
func TestMetrics(t *testing.T) {
	c := newTestCluster(t, 3)
	f := c.followers()[0]
	cl := c.client(f) // every write is forwarded by the follower
	ctx := context.Background()
	lic := provision(t, cl, 2, 60)
	res, err := checkout(cl, lic.Key, "m1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Heartbeat(ctx, res.Lease.ID, lic.Key); err != nil {
		t.Fatal(err)
	}
	c.waitApplied() // the stale read on the follower must know the license
	for _, cons := range []string{api.ConsistencyStale, api.ConsistencyLinearizable} {
		if _, err := cl.Validate(ctx, api.ValidateRequest{LicenseKey: lic.Key}, cons); err != nil {
			t.Fatal(err)
		}
	}
	c.waitApplied()
	leader := c.waitLeader()

	type want struct {
		name   string
		labels map[string]string
		check  func(float64) bool
		what   string
	}
	one := func(v float64) bool { return v == 1 }
	zero := func(v float64) bool { return v == 0 }
	some := func(v float64) bool { return v >= 1 }
	state := func(s string) map[string]string { return map[string]string{"state": s} }
	for _, tc := range []struct {
		node  int
		wants []want
	}{
		{leader, []want{
			{"tally_raft_state", state("leader"), one, "1"},
			{"tally_raft_state", state("follower"), zero, "0"},
			{"tally_raft_state", state("candidate"), zero, "0"},
			{"tally_raft_state", state("shutdown"), zero, "0"},
			{"tally_raft_leader", nil, one, "1"},
			{"tally_raft_apply_duration_seconds", nil, some, "samples"},
			{"tally_checkouts_total", map[string]string{"result": "ok"}, one, "1"},
			{"tally_leases_live", nil, one, "1"},
			{"tally_heartbeats_total", nil, one, "1"},
			{"tally_raft_last_contact_seconds", nil, zero, "0"},
			{"tally_raft_term", nil, some, ">= 1"},
			{"tally_raft_applied_index", nil, some, ">= 1"},
		}},
		{f, []want{
			{"tally_raft_state", state("follower"), one, "1"},
			{"tally_raft_state", state("leader"), zero, "0"},
			{"tally_raft_leader", nil, zero, "0"},
			{"tally_checkouts_total", map[string]string{"result": "forwarded"}, one, "1"},
			{"tally_forwarded_requests_total", map[string]string{"result": "ok"}, some, ">= 1"},
			{"tally_leases_live", nil, one, "1"},
			{"tally_reads_total", map[string]string{"consistency": "stale"}, one, "1"},
			{"tally_reads_total", map[string]string{"consistency": "linearizable"}, one, "1"},
			{"tally_raft_last_contact_seconds", nil, func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }, "finite, >= 0"},
		}},
	} {
		tn := c.nodes[tc.node]
		for _, w := range tc.wants {
			v, ok := metricValue(t, tn.reg, w.name, w.labels)
			if !ok || !w.check(v) {
				t.Errorf("%s: %s %v = %v (present %v), want %s", tn.id, w.name, w.labels, v, ok, w.what)
			}
		}
	}
	c.checkInvariants()
}

// A node that never heard from a leader reports itself a follower whose
// last contact is +Inf (not -1 ms): its stale reads have no bound.
func TestMetricsNodeWithoutLeader(t *testing.T) {
	cfg := node.DefaultConfig()
	fastConfig(cfg)
	cfg.NodeID, cfg.DataDir = "lone", t.TempDir()
	cfg.HTTPAddr, cfg.RaftAddr, cfg.GossipAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	n, err := node.New(cfg) // no bootstrap, no join: no leader ever
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	if v, _ := metricValue(t, reg, "tally_raft_state", map[string]string{"state": "follower"}); v != 1 {
		t.Errorf(`tally_raft_state{state="follower"} = %v, want 1`, v)
	}
	if v, _ := metricValue(t, reg, "tally_raft_last_contact_seconds", nil); !math.IsInf(v, 1) {
		t.Errorf("tally_raft_last_contact_seconds = %v, want +Inf", v)
	}
	if st := n.Status(false); st.LastContactMS != -1 {
		t.Errorf("status last_contact_ms = %d, want -1 (never)", st.LastContactMS)
	}
	n.Kill()
	if v, _ := metricValue(t, reg, "tally_raft_state", map[string]string{"state": "shutdown"}); v != 1 {
		t.Errorf(`after shutdown tally_raft_state{state="shutdown"} = %v, want 1`, v)
	}
}

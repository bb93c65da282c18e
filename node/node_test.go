package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
	"github.com/tallyhq/tally/fsm"
	"github.com/tallyhq/tally/node"
)

func TestFollowerForwardsWritesAndSeatsHold(t *testing.T) {
	c := newTestCluster(t, 3)
	f := c.followers()[0]
	cl := c.client(f) // every request goes to a follower
	lic := provision(t, cl, 2, 60)

	var wg sync.WaitGroup
	results := make([]error, 6)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, results[i] = checkout(c.client(i%3), lic.Key, fmt.Sprintf("m%d", i), fmt.Sprintf("req-%d", i))
		}(i)
	}
	wg.Wait()
	var ok, full int
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, api.ErrNoSeats):
			full++
		default:
			t.Errorf("unexpected checkout error: %v", err)
		}
	}
	if ok != 2 || full != 4 {
		t.Fatalf("got %d granted and %d refused, want 2 and 4", ok, full)
	}
	c.checkInvariants()
}

func TestLeaderKillFailoverAndCatchUp(t *testing.T) {
	c := newTestCluster(t, 3)
	lic := provision(t, c.clientAll(), 3, 60)
	var leases []string
	for i := 0; i < 2; i++ {
		res, err := checkout(c.clientAll(), lic.Key, fmt.Sprintf("m%d", i), fmt.Sprintf("req-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, res.Lease.ID)
	}
	old := c.waitLeader()
	c.kill(old)
	leader := c.waitLeader()
	if leader == old {
		t.Fatal("the killed node still leads")
	}
	// Every acknowledged lease survived, and a new checkout succeeds.
	for _, id := range leases {
		if _, ok := c.nodes[leader].n.FSM().Lease(id); !ok {
			t.Errorf("acknowledged lease %s lost after failover", id)
		}
	}
	if _, err := checkout(c.clientAll(), lic.Key, "m-new", "req-new"); err != nil {
		t.Fatalf("checkout after failover: %v", err)
	}
	// A retry of a request acknowledged by the old leader takes no new seat.
	res, err := checkout(c.clientAll(), lic.Key, "m0", "req-0")
	if err != nil || res.Lease.ID != leases[0] {
		t.Fatalf("retry after failover: lease %v err %v, want %s", res, err, leases[0])
	}
	c.start(old)
	c.eventually(10*time.Second, "restarted node catches up", func() bool {
		n := c.nodes[old].n
		return n.FSM().AppliedIndex() >= c.nodes[leader].n.FSM().AppliedIndex()
	})
	c.checkInvariants()
}

func TestLinearizableReadOnFollower(t *testing.T) {
	c := newTestCluster(t, 3)
	lic := provision(t, c.clientAll(), 5, 60)
	f := c.followers()[0]
	for i := 0; i < 5; i++ {
		if _, err := checkout(c.client(c.waitLeader()), lic.Key, fmt.Sprintf("m%d", i), ""); err != nil {
			t.Fatal(err)
		}
		// Straight after the leader acknowledged, a linearizable read on
		// a follower must already see the seat.
		v, err := c.client(f).Validate(context.Background(), api.ValidateRequest{LicenseKey: lic.Key, Feature: "cad"}, api.ConsistencyLinearizable)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.Seats["cad"].InUse; got != i+1 {
			t.Fatalf("linearizable read on %s saw %d seats in use, want %d", v.NodeID, got, i+1)
		}
		if v.NodeID != c.nodes[f].id {
			t.Fatalf("read served by %s, want follower %s", v.NodeID, c.nodes[f].id)
		}
	}
	c.checkInvariants()
}

// A stale read says how stale it may be: the serving node's applied index
// and the time since it heard from the leader, which keeps growing while
// the node is cut off and still answers.
func TestStaleReadReportsStaleness(t *testing.T) {
	c := newTestCluster(t, 3)
	lic := provision(t, c.clientAll(), 5, 60)
	c.waitApplied()
	leader := c.waitLeader()
	f := c.followers()[0]
	ctx := context.Background()
	validate := func(i int) *api.ValidateResponse {
		t.Helper()
		v, err := c.client(i).Validate(ctx, api.ValidateRequest{LicenseKey: lic.Key, Feature: "cad"}, api.ConsistencyStale)
		if err != nil {
			t.Fatalf("stale read on %s: %v", c.nodes[i].id, err)
		}
		if v.NodeID != c.nodes[i].id || v.Consistency != api.ConsistencyStale {
			t.Fatalf("stale read on %s answered by %s as %q", c.nodes[i].id, v.NodeID, v.Consistency)
		}
		return v
	}
	if v := validate(leader); v.LastContactMS != 0 || v.AppliedIndex != c.nodes[leader].n.FSM().AppliedIndex() {
		t.Fatalf("stale read on the leader: applied_index %d last_contact_ms %d, want %d and 0",
			v.AppliedIndex, v.LastContactMS, c.nodes[leader].n.FSM().AppliedIndex())
	}
	applied := c.nodes[f].n.FSM().AppliedIndex()
	if v := validate(f); v.AppliedIndex != applied || v.LastContactMS < 0 {
		t.Fatalf("stale read on a follower: applied_index %d last_contact_ms %d, want %d and >= 0",
			v.AppliedIndex, v.LastContactMS, applied)
	}
	// Cut off from both others, the follower still answers, from the same
	// index, and its last contact grows past any heartbeat interval.
	for i := range c.nodes {
		if i != f {
			c.kill(i)
		}
	}
	c.eventually(10*time.Second, "last_contact_ms grows on the cut-off node", func() bool {
		v := validate(f)
		if v.AppliedIndex != applied {
			t.Fatalf("applied_index moved from %d to %d without a leader", applied, v.AppliedIndex)
		}
		return v.LastContactMS >= 500
	})
}

func TestLeaseExpiresNotBeforeDeadline(t *testing.T) {
	c := newTestCluster(t, 3)
	lic := provision(t, c.clientAll(), 1, 1)
	res, err := checkout(c.clientAll(), lic.Key, "m1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	leader := c.waitLeader()
	f := c.nodes[leader].n.FSM()
	c.eventually(5*time.Second, "lease expiry", func() bool {
		_, live := f.Lease(res.Lease.ID)
		if !live {
			return true
		}
		return false
	})
	if time.Now().Before(res.Lease.ExpiresAt) {
		t.Fatalf("lease expired before its expires_at %v", res.Lease.ExpiresAt)
	}
	assertAudited(t, f, fsm.AuditLeaseExpired, res.Lease.ID)
	c.checkInvariants()
}

func TestHeartbeatAndReArmAfterFailover(t *testing.T) {
	// No checkpoint runs, so the replicated deadline stays the one of the
	// checkout: only the new leader's re-arm with a full TTL keeps the
	// lease alive after the failover.
	c := newTestCluster(t, 3, func(cfg *node.Config) { cfg.CheckpointInterval = time.Hour })
	const ttl = 2 * time.Second
	lic := provision(t, c.clientAll(), 1, int64(ttl/time.Second))
	cl := c.clientAll()
	res, err := checkout(cl, lic.Key, "m1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	// Heartbeats keep the lease alive past its stored deadline.
	var promised time.Time
	for end := res.Lease.ExpiresAt.Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		hb, err := cl.Heartbeat(context.Background(), res.Lease.ID, lic.Key)
		if err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		promised = hb.Lease.ExpiresAt
	}
	old := c.waitLeader()
	if ls, _ := c.nodes[old].n.FSM().Lease(res.Lease.ID); time.Unix(0, ls.ExpiresAt).After(time.Now()) {
		t.Fatalf("the stored deadline %v moved: a checkpoint ran", time.Unix(0, ls.ExpiresAt))
	}
	// The new leader becomes ready after the kill and re-arms the lease at
	// its ready time + TTL or later: the lease is live at least until
	// kill + TTL, well past both its stored and its promised deadline.
	killed := time.Now()
	c.kill(old)
	leader := c.waitLeader()
	f := c.nodes[leader].n.FSM()
	liveUntil := killed.Add(ttl - 50*time.Millisecond)
	if time.Now().After(liveUntil) {
		t.Logf("the failover took %v, longer than the TTL: the re-arm went unchecked", time.Since(killed))
	}
	for {
		_, live := f.Lease(res.Lease.ID)
		now := time.Now()
		if now.After(liveUntil) {
			break
		}
		if !live {
			t.Fatalf("lease expired %v after the leader was killed, before the full TTL %v the new leader owes it", now.Sub(killed), ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.eventually(10*time.Second, "lease expiry after failover", func() bool {
		_, live := f.Lease(res.Lease.ID)
		return !live
	})
	if time.Now().Before(promised) {
		t.Fatalf("lease expired before the deadline %v promised by the old leader", promised)
	}
	_, err = cl.Heartbeat(context.Background(), res.Lease.ID, lic.Key)
	if !errors.Is(err, api.ErrLeaseExpired) {
		t.Fatalf("heartbeat after expiry: %v, want lease_expired", err)
	}
	c.checkInvariants()
}

// A heartbeat moves a deadline in the leader's memory only: many of them,
// through the leader and through a follower, add no Raft entry while no
// checkpoint runs.
func TestHeartbeatCostsNoRaftEntry(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *node.Config) { cfg.CheckpointInterval = time.Hour })
	lic := provision(t, c.clientAll(), 1, 60)
	res, err := checkout(c.clientAll(), lic.Key, "m1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// An election appends entries of its own (no-op, barrier); a round
	// during which one happened says nothing and is run again.
	for round := 0; round < 3; round++ {
		c.waitApplied()
		leader := c.waitLeader()
		r := c.nodes[leader].n.Raft()
		term, last := r.CurrentTerm(), r.LastIndex()
		clients := []*client.Client{c.client(leader), c.client(c.followers()[0])}
		for i := 0; i < 50; i++ {
			if _, err := clients[i%2].Heartbeat(ctx, res.Lease.ID, lic.Key); err != nil {
				t.Fatalf("heartbeat %d: %v", i, err)
			}
		}
		if r.CurrentTerm() != term || c.waitLeader() != leader {
			t.Logf("round %d: an election ran; again", round)
			continue
		}
		if got := r.LastIndex(); got != last {
			t.Fatalf("50 heartbeats moved the leader's last index from %d to %d", last, got)
		}
		return
	}
	t.Fatal("no round without an election")
}

// The leader's checkpoints replicate deadlines that heartbeats moved: a
// follower's copy of the lease moves forward, never past what the leader
// promised.
func TestCheckpointReplicatesHeartbeatDeadlines(t *testing.T) {
	c := newTestCluster(t, 3) // checkpoints every 100 ms
	cl := c.clientAll()
	lic := provision(t, cl, 1, 60)
	res, err := checkout(cl, lic.Key, "m1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Heartbeat until the deadline has moved past the checkpoint threshold
	// (half a second).
	var promised time.Time
	c.eventually(10*time.Second, "a heartbeat moves the deadline by more than 600 ms", func() bool {
		hb, err := cl.Heartbeat(ctx, res.Lease.ID, lic.Key)
		if err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		promised = hb.Lease.ExpiresAt
		return promised.Sub(res.Lease.ExpiresAt) > 600*time.Millisecond
	})
	f := c.nodes[c.followers()[0]].n.FSM()
	c.eventually(10*time.Second, "a checkpoint reaches the follower", func() bool {
		ls, ok := f.Lease(res.Lease.ID)
		if !ok {
			t.Fatal("the lease is gone from the follower")
		}
		stored := time.Unix(0, ls.ExpiresAt)
		if stored.After(promised) {
			t.Fatalf("stored deadline %v is later than the leader's %v", stored, promised)
		}
		return stored.Sub(res.Lease.ExpiresAt) > 500*time.Millisecond
	})
	c.checkInvariants()
}

func TestAdminRevokeEndsLease(t *testing.T) {
	c := newTestCluster(t, 3)
	cl := c.clientAll()
	lic := provision(t, cl, 1, 60)
	res, err := checkout(cl, lic.Key, "m1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.RevokeLease(context.Background(), res.Lease.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Heartbeat(context.Background(), res.Lease.ID, lic.Key); !errors.Is(err, api.ErrLeaseExpired) {
		t.Fatalf("heartbeat of a revoked lease: %v, want lease_expired", err)
	}
	if _, err := checkout(cl, lic.Key, "m2", "r2"); err != nil {
		t.Fatalf("the revoked seat is free again: %v", err)
	}
	c.checkInvariants()
}

func assertAudited(t *testing.T, f *fsm.FSM, typ, leaseID string) {
	t.Helper()
	for _, r := range f.Audit(0, 0) {
		if r.Type == typ && r.LeaseID == leaseID {
			return
		}
	}
	t.Errorf("no %s audit record for lease %s", typ, leaseID)
}

func TestJoinTransferAndRemovePeer(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	// Every node knows the index of the bootstrap configuration.
	var bootIndex uint64
	c.eventually(10*time.Second, "every node reports the configuration's index", func() bool {
		for _, tn := range c.live() {
			cfg, err := tn.n.RaftConfiguration()
			if err != nil || cfg.Index == 0 {
				return false
			}
			bootIndex = max(bootIndex, cfg.Index)
		}
		return true
	})
	// A fourth node that joins by gossip only is added as a voter by the
	// leader.
	c.nodes = append(c.nodes, &testNode{id: "n4", dataDir: t.TempDir(), addrs: [3]string{freeAddr(t), freeAddr(t), freeAddr(t)}})
	c.startJoining(3)
	cl := c.clientAll()
	c.eventually(10*time.Second, "n4 becomes a voter", func() bool {
		cfg, err := cl.RaftConfiguration(ctx)
		return err == nil && len(cfg.Servers) == 4
	})
	// GET /v1/cluster/raft reports the index of the entry that added n4.
	c.eventually(10*time.Second, "the configuration index moves past the bootstrap's", func() bool {
		cfg, err := cl.RaftConfiguration(ctx)
		return err == nil && len(cfg.Servers) == 4 && cfg.Index > bootIndex
	})
	lic := provision(t, cl, 1, 60)
	c.eventually(10*time.Second, "n4 applies the log", func() bool {
		_, ok := c.nodes[3].n.FSM().License(lic.ID)
		return ok
	})

	// The leader cannot hand leadership to itself.
	if _, err := cl.TransferLeadership(ctx, c.nodes[c.waitLeader()].id); !errors.Is(err, api.Errorf(api.CodeConflict, "")) {
		t.Fatalf("transfer to the leader itself: %v, want conflict", err)
	}
	// Leadership moves to the node asked for.
	if _, err := cl.TransferLeadership(ctx, "n4"); err != nil {
		t.Fatalf("transfer leadership: %v", err)
	}
	c.eventually(10*time.Second, "n4 leads", func() bool { return c.waitLeader() == 3 })

	// An alive peer cannot be removed (the leader would re-add it); a
	// dead one can, and stays out.
	if err := cl.RemovePeer(ctx, "n1"); !errors.Is(err, api.Errorf(api.CodeConflict, "")) {
		t.Fatalf("removing an alive peer: %v, want conflict", err)
	}
	c.kill(0)
	c.eventually(30*time.Second, "gossip marks n1 dead", func() bool {
		for _, m := range c.nodes[3].n.Members() {
			if m.ID == "n1" {
				return m.Status == "dead"
			}
		}
		return false
	})
	if err := cl.RemovePeer(ctx, "n1"); err != nil {
		t.Fatalf("remove peer: %v", err)
	}
	c.eventually(5*time.Second, "n1 out of every configuration", func() bool {
		for _, tn := range c.live() {
			cfg, err := tn.n.RaftConfiguration()
			if err != nil || len(cfg.Servers) != 3 {
				return false
			}
		}
		return true
	})
	if err := cl.RemovePeer(ctx, "nobody"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("removing an unknown peer: %v, want not_found", err)
	}
	c.checkInvariants()
}

// A node that was down while the log was compacted catches up by
// installing a snapshot, and ends in the same state.
func TestRestartedNodeInstallsSnapshot(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *node.Config) {
		cfg.TrailingLogs = 4
	})
	cl := c.clientAll()
	lic := provision(t, cl, 50, 60)
	victim := c.followers()[0]
	c.kill(victim)
	var leases []string
	for i := 0; i < 40; i++ {
		res, err := checkout(cl, lic.Key, fmt.Sprintf("m%d", i), fmt.Sprintf("r%d", i))
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, res.Lease.ID)
	}
	leader := c.waitLeader()
	// Snapshot now, so the log the victim misses is surely compacted away.
	if err := c.nodes[leader].n.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	c.start(victim)
	// Installing a snapshot restores the state before raft records the
	// snapshot index, so both are awaited together. A node that caught up
	// from the log instead never records one and the wait fails.
	c.eventually(15*time.Second, "the restarted node catches up by installing a snapshot", func() bool {
		n := c.nodes[victim].n
		_, ok := n.FSM().Lease(leases[len(leases)-1])
		return ok && n.Raft().Stats()["last_snapshot_index"] != "0"
	})
	c.checkInvariants()
}

// Every domain refusal reaches the client with its documented code.
func TestDomainRefusalsOverHTTP(t *testing.T) {
	c := newTestCluster(t, 3)
	cl := c.client(c.followers()[0])
	ctx := context.Background()
	lic := provision(t, cl, 1, 60)
	past := time.Now().Add(-time.Hour)
	expired, err := cl.CreateLicense(ctx, api.CreateLicenseRequest{PolicyID: lic.PolicyID, Customer: "late", ExpiresAt: &past})
	if err != nil {
		t.Fatal(err)
	}
	co := func(key, feature string) error {
		_, err := cl.Checkout(ctx, api.CheckoutRequest{LicenseKey: key, Feature: feature, Holder: api.Holder{Machine: "m"}})
		return err
	}
	expect := func(what string, err error, want *api.Error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %s", what, err, want.Code)
		}
	}
	expect("unknown key", co("TLY-NOPE", "cad"), api.ErrUnauthorized)
	expect("feature not in policy", co(lic.Key, "render"), api.ErrFeatureNotEntitled)
	expect("expired license", co(expired.Key, "cad"), api.ErrLicenseExpired)
	_, err = cl.Validate(ctx, api.ValidateRequest{LicenseKey: "TLY-NOPE"}, api.ConsistencyStale)
	expect("validate unknown key", err, api.ErrUnauthorized)
	_, err = cl.Heartbeat(ctx, "lse_never", lic.Key)
	expect("heartbeat of an unknown lease", err, api.ErrNotFound)

	if _, err := cl.SuspendLicense(ctx, lic.ID); err != nil {
		t.Fatal(err)
	}
	expect("suspended license", co(lic.Key, "cad"), api.ErrLicenseSuspended)
	v, err := cl.Validate(ctx, api.ValidateRequest{LicenseKey: lic.Key, Feature: "cad"}, api.ConsistencyLinearizable)
	if err != nil || v.Valid || v.Code != api.CodeLicenseSuspended {
		t.Errorf("validate of a suspended license: %+v %v", v, err)
	}
	if _, err := cl.ReinstateLicense(ctx, lic.ID); err != nil {
		t.Fatal(err)
	}
	res, err := cl.Checkout(ctx, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: api.Holder{Machine: "m"}})
	if err != nil {
		t.Fatalf("checkout after reinstate: %v", err)
	}
	expect("second seat", co(lic.Key, "cad"), api.ErrNoSeats)
	if _, err := cl.RevokeLicense(ctx, lic.ID); err != nil {
		t.Fatal(err)
	}
	expect("revoked license", co(lic.Key, "cad"), api.ErrLicenseRevoked)
	_, err = cl.Heartbeat(ctx, res.Lease.ID, lic.Key)
	expect("heartbeat after the license was revoked", err, api.ErrLeaseExpired)
	_, err = cl.ReinstateLicense(ctx, lic.ID)
	expect("reinstating a revoked license", err, api.Errorf(api.CodeConflict, ""))
	_, err = cl.License(ctx, "lic_nope")
	expect("unknown license", err, api.ErrNotFound)
	// The node proposes checkouts at the body version that audits every
	// refusal of a known license (the unknown key leaves no trace).
	var denied []string
	for _, r := range c.nodes[c.waitLeader()].n.FSM().Audit(0, 0) {
		if r.Type == fsm.AuditLeaseDenied {
			denied = append(denied, strings.Fields(r.Detail)[0])
		}
	}
	want := []string{api.CodeFeatureNotEntitled, api.CodeLicenseExpired, api.CodeLicenseSuspended,
		api.CodeNoSeatsAvailable, api.CodeLicenseRevoked}
	if !slices.Equal(denied, want) {
		t.Errorf("lease.denied records %v, want %v", denied, want)
	}
	c.checkInvariants()
}

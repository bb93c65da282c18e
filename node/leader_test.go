package node

import (
	"context"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/internal/freeport"
)

// startLeader starts a one-node cluster whose leader duties never tick on
// their own (the test calls them) and waits until it is the ready leader.
func startLeader(t *testing.T, tweak func(*Config)) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.BootstrapExpect = "n1", t.TempDir(), 1
	cfg.GossipProfile = "local"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
	cfg.ReapInterval, cfg.CheckpointInterval, cfg.ReconcileInterval = time.Hour, time.Hour, time.Hour
	for _, a := range []*string{&cfg.HTTPAddr, &cfg.RaftAddr, &cfg.GossipAddr} {
		addr, err := freeport.Addr()
		if err != nil {
			t.Fatal(err)
		}
		*a = addr
	}
	if tweak != nil {
		tweak(cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitFor(ctx, 10*time.Millisecond, n.leaderReady.Load); err != nil {
		t.Fatal("the node did not become the ready leader")
	}
	return n
}

// checkoutLease provisions a license whose "cad" leases last ttl seconds
// and checks one out.
func checkoutLease(t *testing.T, n *Node, ttl int64) *api.LeaseResponse {
	t.Helper()
	ctx := context.Background()
	p, err := n.CreateProduct(ctx, api.CreateProductRequest{Name: "CAD"})
	if err != nil {
		t.Fatal(err)
	}
	seats := 5
	pol, err := n.CreatePolicy(ctx, api.CreatePolicyRequest{ProductID: p.ID, Name: "floating", LeaseTTLSeconds: ttl,
		Features: []api.Feature{{Name: "cad", Seats: &seats}}})
	if err != nil {
		t.Fatal(err)
	}
	lic, err := n.CreateLicense(ctx, api.CreateLicenseRequest{PolicyID: pol.ID, Customer: "ACME"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Checkout(ctx, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: api.Holder{Machine: "m"}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// returns runs f and reports whether it returned within d (f stalling for
// the node's hour-long LeaderWait is what it catches).
func returns(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// While the leader is not ready (as during a snapshot restore) its reaper
// and checkpoints step aside at once instead of waiting for a leader to
// forward to; the lease they skipped stays armed and is handled once the
// node is ready again.
func TestLeaderDutiesStepAsideWhileNotReady(t *testing.T) {
	n := startLeader(t, func(c *Config) { c.LeaderWait = time.Hour })
	res := checkoutLease(t, n, 1)
	id := res.Lease.ID
	ls, ok := n.fsm.Lease(id)
	if !ok {
		t.Fatal("the checked-out lease is not in the state")
	}

	// A heartbeat-moved deadline waits for a checkpoint.
	renewed, _ := n.lessor.renew(ls, 0, n.now()+int64(time.Second))
	n.leaderReady.Store(false)
	if !returns(10*time.Second, n.checkpoint) {
		t.Fatal("checkpoint stalled while the node was not ready")
	}
	if got, _ := n.fsm.Lease(id); got.ExpiresAt != ls.ExpiresAt {
		t.Fatalf("a checkpoint was written while the node was not ready")
	}
	n.leaderReady.Store(true)
	n.checkpoint()
	if got, _ := n.fsm.Lease(id); got.ExpiresAt != renewed {
		t.Fatalf("stored deadline %d after the checkpoint, want %d", got.ExpiresAt, renewed)
	}

	// The lease falls due.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitFor(ctx, 10*time.Millisecond, func() bool { return n.now() > renewed }); err != nil {
		t.Fatal(err)
	}
	n.leaderReady.Store(false)
	if !returns(10*time.Second, n.reapDue) {
		t.Fatal("reapDue stalled while the node was not ready")
	}
	if _, ok := n.fsm.Lease(id); !ok {
		t.Fatal("the lease expired while the node was not ready")
	}
	if _, ok := n.lessor.deadline(id); !ok {
		t.Fatal("the reaper left the lease popped (expiring) while the node was not ready")
	}
	n.leaderReady.Store(true)
	n.reapDue()
	if _, ok := n.fsm.Lease(id); ok {
		t.Fatal("the due lease did not expire once the node was ready")
	}
}

package clustertest_test

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	clustertest "github.com/tallyhq/tally/cluster-test"
)

// TestSeatsNeverExceeded races 30 checkouts for 3 seats through all three
// nodes: exactly 3 win, the rest are told no_seats_available, and a winner's
// retry through another node gets its own lease back without a 4th seat
// (DESIGN.md §8 invariants 1 and 3).
func TestSeatsNeverExceeded(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 3)
	lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", 3))

	const tries = 30
	type outcome struct {
		node  int
		req   api.CheckoutRequest
		lease *api.LeaseResponse
		err   error
	}
	outcomes := make([]outcome, tries)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k := range tries {
		req := api.CheckoutRequest{
			LicenseKey: lic.Key,
			Feature:    "cad",
			Holder:     holder(k),
			RequestID:  fmt.Sprintf("race-%02d", k),
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			lease, i, err := checkoutUntilAnswered(c, []int{k % c.N()}, req, 30*time.Second)
			outcomes[k] = outcome{node: i, req: req, lease: lease, err: err}
		}()
	}
	close(start)
	wg.Wait()

	var winners []outcome
	denied := 0
	leaseIDsSeen := map[string]bool{}
	for k, o := range outcomes {
		switch {
		case o.err == nil:
			winners = append(winners, o)
			if leaseIDsSeen[o.lease.Lease.ID] {
				t.Errorf("checkout %d: lease id %s handed out twice", k, o.lease.Lease.ID)
			}
			leaseIDsSeen[o.lease.Lease.ID] = true
			if l := o.lease.Lease; l.LicenseID != lic.ID || l.Feature != "cad" || l.Holder != o.req.Holder || !l.ExpiresAt.After(l.IssuedAt) {
				t.Errorf("checkout %d: lease does not match the request: %+v", k, l)
			}
		case errors.Is(o.err, api.ErrNoSeats):
			denied++
		default:
			t.Errorf("checkout %d through %s: want a lease or no_seats_available, got %v", k, c.NodeID(o.node), o.err)
		}
	}
	if len(winners) != 3 || denied != tries-3 {
		t.Fatalf("%d checkouts for 3 seats: %d succeeded and %d got no_seats_available, want 3 and %d", tries, len(winners), denied, tries-3)
	}

	// A winner retries (same body, same request_id) through another node.
	w := winners[0]
	other := (w.node + 1) % c.N()
	replay, _, err := checkoutUntilAnswered(c, []int{other}, w.req, 30*time.Second)
	if err != nil {
		t.Fatalf("replay of %s through %s: %v", w.req.RequestID, c.NodeID(other), err)
	}
	if replay.Lease.ID != w.lease.Lease.ID {
		t.Fatalf("replay of %s through %s: lease %s, the original answer (through %s) was lease %s",
			w.req.RequestID, c.NodeID(other), replay.Lease.ID, c.NodeID(w.node), w.lease.Lease.ID)
	}

	for i := range c.N() {
		live, err := leaseIDs(c, i, lic.ID)
		if err != nil {
			t.Fatalf("leases through %s: %v", c.NodeID(i), err)
		}
		if len(live) != 3 {
			t.Errorf("through %s: %d live leases, want 3: %v", c.NodeID(i), len(live), sortedIDs(live))
		}
		for _, o := range winners {
			if _, ok := live[o.lease.Lease.ID]; !ok {
				t.Errorf("through %s: acknowledged lease %s is not listed", c.NodeID(i), o.lease.Lease.ID)
			}
		}
		u, err := seats(c, i, lic.Key, "cad", api.ConsistencyLinearizable)
		if err != nil {
			t.Fatalf("validate through %s: %v", c.NodeID(i), err)
		}
		if u.Total != 3 || u.InUse != 3 {
			t.Errorf("validate through %s: seats %+v, want 3 of 3 in use", c.NodeID(i), u)
		}
	}

	recs, err := c.Audit(c.Leader(), api.ConsistencyLinearizable)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	if n := countAudit(recs, lic.ID, "lease.checkout"); n != 3 {
		t.Errorf("audit has %d lease.checkout records for the license, want 3 (the replay must not add one)", n)
	}
	if n := countAudit(recs, lic.ID, "lease.denied"); n < tries-3 {
		t.Errorf("audit has %d lease.denied records for the license, want at least %d", n, tries-3)
	}
	c.CheckInvariants(t)
}

// TestLeaderKillKeepsLeases kills the leader with SIGKILL while two seats
// are out: a checkout through a survivor succeeds once a new leader is
// elected, every acknowledged lease is still there, and the killed node
// catches up when it comes back (DESIGN.md §8 invariants 2 and 4).
func TestLeaderKillKeepsLeases(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 3)
	lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", 5))

	leader := c.Leader()
	var acked []api.Lease
	for k, i := range []int{leader, c.Followers()[0]} {
		lease := mustCheckout(t, c, []int{i}, api.CheckoutRequest{
			LicenseKey: lic.Key, Feature: "cad", Holder: holder(k), RequestID: fmt.Sprintf("before-kill-%d", k),
		})
		acked = append(acked, lease.Lease)
	}

	c.Kill(leader)
	survivors := c.LiveNodes()
	req := api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: holder(9), RequestID: "after-kill"}
	killedAt := time.Now()
	lease, i, err := checkoutUntilAnswered(c, survivors[:1], req, 30*time.Second)
	if err != nil {
		t.Fatalf("checkout through survivor %s after killing leader %s: %v", c.NodeID(survivors[0]), c.NodeID(leader), err)
	}
	t.Logf("checkout through %s answered %s after the leader was killed", c.NodeID(i), time.Since(killedAt).Round(time.Millisecond))
	acked = append(acked, lease.Lease)

	newLeader := c.WaitLeader()
	if newLeader == leader {
		t.Fatalf("killed node %s is still the leader", c.NodeID(leader))
	}
	// The same request id through the other survivor: the same lease.
	replay := mustCheckout(t, c, survivors[1:], req)
	if replay.Lease.ID != lease.Lease.ID {
		t.Errorf("replay of after-kill through %s: lease %s, want %s", c.NodeID(survivors[1]), replay.Lease.ID, lease.Lease.ID)
	}
	// A request id acknowledged by the dead leader is remembered by the new one.
	again := mustCheckout(t, c, []int{newLeader}, api.CheckoutRequest{
		LicenseKey: lic.Key, Feature: "cad", Holder: holder(0), RequestID: "before-kill-0",
	})
	if again.Lease.ID != acked[0].ID {
		t.Errorf("replay of before-kill-0 through new leader %s: lease %s, the killed leader answered %s", c.NodeID(newLeader), again.Lease.ID, acked[0].ID)
	}
	for _, s := range survivors {
		assertLeases(t, c, s, lic.ID, acked)
	}

	c.Restart(leader)
	clustertest.Eventually(t, 30*time.Second, "restarted node catches up with the leader", func() error {
		ld, err := c.StatusWithHash(c.Leader())
		if err != nil {
			return err
		}
		back, err := c.StatusWithHash(leader)
		if err != nil {
			return err
		}
		if back.AppliedIndex < ld.AppliedIndex {
			return fmt.Errorf("%s applied %d, leader %s applied %d", back.NodeID, back.AppliedIndex, ld.NodeID, ld.AppliedIndex)
		}
		if back.AppliedIndex != ld.AppliedIndex || back.StateHash != ld.StateHash {
			return fmt.Errorf("%s at %d has hash %s, leader %s at %d has %s",
				back.NodeID, back.AppliedIndex, back.StateHash, ld.NodeID, ld.AppliedIndex, ld.StateHash)
		}
		return nil
	})
	assertLeases(t, c, leader, lic.ID, acked)
	c.CheckInvariants(t)
}

// assertLeases checks, linearizably through node i, that the license has
// exactly the acknowledged leases.
func assertLeases(t *testing.T, c *clustertest.Cluster, i int, licenseID string, acked []api.Lease) {
	t.Helper()
	var live map[string]api.Lease
	clustertest.Eventually(t, 20*time.Second, "linearizable lease list through "+c.NodeID(i), func() error {
		var err error
		live, err = leaseIDs(c, i, licenseID)
		return err
	})
	for _, want := range acked {
		got, ok := live[want.ID]
		if !ok {
			t.Errorf("through %s: acknowledged lease %s is lost (live: %v)", c.NodeID(i), want.ID, sortedIDs(live))
			continue
		}
		if got.Holder != want.Holder || got.Feature != want.Feature {
			t.Errorf("through %s: lease %s changed: %+v, acknowledged as %+v", c.NodeID(i), want.ID, got, want)
		}
	}
	if len(live) != len(acked) {
		t.Errorf("through %s: %d live leases, want the %d acknowledged: %v", c.NodeID(i), len(live), len(acked), sortedIDs(live))
	}
}

// TestStopRestartAndPause drives the rest of the harness's vocabulary: a
// follower stopped with SIGTERM misses a checkout and learns it on restart;
// a leader frozen with SIGSTOP is replaced, misses a checkout, and follows
// the new leader once resumed. No acknowledged lease is lost.
func TestStopRestartAndPause(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 3)
	lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", 5))
	var acked []api.Lease
	take := func(k int, through []int) {
		t.Helper()
		lease := mustCheckout(t, c, through, api.CheckoutRequest{
			LicenseKey: lic.Key, Feature: "cad", Holder: holder(k), RequestID: fmt.Sprintf("stop-pause-%d", k),
		})
		acked = append(acked, lease.Lease)
	}
	take(0, c.Followers()[:1])

	stopped := c.Followers()[0]
	c.Stop(stopped)
	take(1, c.LiveNodes())
	c.Restart(stopped)
	c.WaitLeader()
	assertLeases(t, c, stopped, lic.ID, acked)

	paused := c.Leader()
	c.Pause(paused)
	newLeader := c.WaitLeader()
	if newLeader == paused {
		t.Fatalf("paused node %s is still the agreed leader", c.NodeID(paused))
	}
	take(2, c.LiveNodes())
	c.Resume(paused)
	c.WaitLeader()
	assertLeases(t, c, paused, lic.ID, acked)
	c.CheckInvariants(t)
}

// TestLeaseExpiresAfterTTL checks a lease out for 2 s and never
// heartbeats: the seat stays taken until expires_at, comes back within a
// few seconds after, and the audit log says the lease expired (DESIGN.md
// §8 invariant 5).
func TestLeaseExpiresAfterTTL(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 3)
	lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", 1))

	lease := mustCheckout(t, c, c.Followers()[:1], api.CheckoutRequest{
		LicenseKey: lic.Key, Feature: "cad", Holder: holder(1), RequestID: "short-lease", TTLSeconds: 2,
	})
	l := lease.Lease
	if got := l.ExpiresAt.Sub(l.IssuedAt); got != 2*time.Second {
		t.Errorf("lease with ttl_seconds 2: expires_at - issued_at = %s, want 2s", got)
	}
	waitSeatFree(t, c, lic.Key, "cad", l.ExpiresAt, 5*time.Second)

	assertExpired(t, c, lic, l)
	// The seat is really back: someone else gets it.
	mustCheckout(t, c, []int{c.Leader()}, api.CheckoutRequest{
		LicenseKey: lic.Key, Feature: "cad", Holder: holder(2), RequestID: "next-user",
	})
	c.CheckInvariants(t)
}

// assertExpired checks that lease l has ended by expiry, not before its
// expires_at, on every node.
func assertExpired(t *testing.T, c *clustertest.Cluster, lic *api.License, l api.Lease) {
	t.Helper()
	for i := range c.N() {
		live, err := leaseIDs(c, i, lic.ID)
		if err != nil {
			t.Fatalf("leases through %s: %v", c.NodeID(i), err)
		}
		if _, ok := live[l.ID]; ok {
			t.Errorf("through %s: expired lease %s is still listed", c.NodeID(i), l.ID)
		}
		rec, err := expiryRecord(c, i, l.ID)
		if err != nil {
			t.Errorf("audit through %s: %v", c.NodeID(i), err)
			continue
		}
		if rec.Time.Before(l.ExpiresAt) {
			t.Errorf("audit through %s: lease %s expired at %s, before its expires_at %s", c.NodeID(i), l.ID, rec.Time, l.ExpiresAt)
		}
		if rec.LicenseID != lic.ID || rec.Feature != l.Feature {
			t.Errorf("audit through %s: expiry record names license %s feature %s, want %s %s", c.NodeID(i), rec.LicenseID, rec.Feature, lic.ID, l.Feature)
		}
	}
	_, err := heartbeat(c, c.Followers()[0], l.ID, lic.Key)
	if !errors.Is(err, api.ErrLeaseExpired) {
		t.Errorf("heartbeat of expired lease %s: want lease_expired, got %v", l.ID, err)
	}
}

// TestHeartbeatKeepsLease keeps a 2 s lease alive for 5 s with heartbeats
// every 500 ms through every node in turn, then stops: the lease outlives
// its TTL while heartbeats come and expires after the last one's expires_at.
func TestHeartbeatKeepsLease(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 3)
	lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", 1))
	lease := mustCheckout(t, c, []int{c.Leader()}, api.CheckoutRequest{
		LicenseKey: lic.Key, Feature: "cad", Holder: holder(1), RequestID: "kept-lease", TTLSeconds: 2,
	})
	l := lease.Lease
	const ttl = 2 * time.Second

	last := l
	beats := 0
	ticker := time.NewTicker(500 * time.Millisecond) // the heartbeat cadence
	defer ticker.Stop()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		<-ticker.C
		i := beats % c.N()
		sent := time.Now()
		// A transient failure may be retried while the lease still has
		// well over half its TTL left; lease_expired is never retried.
		hb, err := heartbeat(c, i, l.ID, lic.Key)
		for transient(err) && time.Since(sent) < 300*time.Millisecond {
			time.Sleep(20 * time.Millisecond) // retry cadence
			hb, err = heartbeat(c, i, l.ID, lic.Key)
		}
		if err != nil {
			t.Fatalf("heartbeat %d through %s, %s after the previous expires_at %s: %v",
				beats, c.NodeID(i), time.Since(last.ExpiresAt), last.ExpiresAt.Format(time.RFC3339Nano), err)
		}
		if hb.Lease.ID != l.ID || hb.Token == "" {
			t.Fatalf("heartbeat %d through %s: answer for lease %q (token of %d chars), want %s", beats, c.NodeID(i), hb.Lease.ID, len(hb.Token), l.ID)
		}
		if floor := sent.Add(ttl); hb.Lease.ExpiresAt.Before(floor) {
			t.Errorf("heartbeat %d through %s sent at %s: expires_at %s, want at least sent + ttl %s",
				beats, c.NodeID(i), sent.Format(time.RFC3339Nano), hb.Lease.ExpiresAt.Format(time.RFC3339Nano), floor.Format(time.RFC3339Nano))
		}
		if hb.Lease.ExpiresAt.Before(last.ExpiresAt) {
			t.Errorf("heartbeat %d through %s moved expires_at back from %s to %s", beats, c.NodeID(i), last.ExpiresAt, hb.Lease.ExpiresAt)
		}
		last = hb.Lease
		beats++
	}
	if since := time.Since(l.ExpiresAt); since < 2*time.Second {
		t.Fatalf("heartbeat phase ended only %s after the checkout's expires_at; the test proves nothing", since)
	}
	for i := range c.N() {
		u, err := seats(c, i, lic.Key, "cad", api.ConsistencyLinearizable)
		if err != nil {
			t.Fatalf("validate through %s: %v", c.NodeID(i), err)
		}
		if u.InUse != 1 {
			t.Fatalf("through %s after %d heartbeats: seats %+v, want the lease still live (1 in use)", c.NodeID(i), beats, u)
		}
		assertLeases(t, c, i, lic.ID, []api.Lease{l})
	}

	// Heartbeats stop: the lease ends after the last promised expires_at.
	waitSeatFree(t, c, lic.Key, "cad", last.ExpiresAt, 5*time.Second)
	assertExpired(t, c, lic, last)
	c.CheckInvariants(t)
}

func sortedIDs(m map[string]api.Lease) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

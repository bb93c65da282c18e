package clustertest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
	clustertest "github.com/tallyhq/tally/cluster-test"
	"github.com/tallyhq/tally/token"
)

// TestSeatHoldsThroughLeaderKill holds a seat with the SDK's Seat while the
// leader it talks to is killed. The feature has two seats, so a Seat that
// wrongly checked out again would show as two in use: every answered read
// through every live node must say exactly one, the Seat must stay held
// and its Validator valid, and its token must come to be signed by the new
// leader's key (fetched by the Seat when it first sees it).
//
// The TTL (10 s) is far above the failover time (about a second, see
// docs/operations.md), so the Seat must report no loss at all: its only
// event is the first SeatHeld, and its lease is the one it started with.
func TestSeatHoldsThroughLeaderKill(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 3)
	lic := c.ProvisionLicense(10*time.Second, clustertest.Seats("cad", 2))

	// The Seat's client talks to the leader first, so the kill hits the
	// node it uses.
	leader := c.Leader()
	addrs := []string{c.Addr(leader)}
	for _, f := range c.Followers() {
		addrs = append(addrs, c.Addr(f))
	}
	cl, err := client.New(client.Config{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []client.SeatEvent
	record := func(ev client.SeatEvent) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, ev)
	}
	seen := func() []client.SeatEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]client.SeatEvent(nil), events...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seat, err := cl.AcquireSeat(ctx, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad"}, client.OnSeatChange(record))
	if err != nil {
		t.Fatalf("AcquireSeat through %s: %v", c.NodeID(leader), err)
	}
	defer seat.Close(context.Background())
	v := client.NewValidator(seat)
	lease := seat.Lease()
	oldKid := tokenKid(t, seat.Token())

	// sample checks once that exactly one seat is held through every node
	// of nodes that answers, and that the Seat and Validator agree.
	sample := func(nodes []int) {
		t.Helper()
		if st := seat.State(); st != client.SeatHeld {
			t.Fatalf("seat %s (%v); events %+v", st, seat.Err(), seen())
		}
		if vd := v.Check("cad"); !vd.Valid {
			t.Fatalf("Validator: %+v", vd)
		}
		for _, i := range nodes {
			u, err := seats(c, i, lic.Key, "cad", api.ConsistencyLinearizable)
			switch {
			case err != nil && !transient(err):
				t.Fatalf("validate through %s: %v", c.NodeID(i), err)
			case err == nil && u.InUse != 1:
				t.Fatalf("validate through %s: %d of %d seats in use, want exactly 1", c.NodeID(i), u.InUse, u.Total)
			}
		}
	}
	// until samples every 100 ms until cond holds.
	until := func(what string, nodes []int, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			sample(nodes)
			if cond() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not within 30s: %s", what)
			}
			time.Sleep(100 * time.Millisecond) // sampling cadence
		}
	}

	tok := seat.Token()
	until("a heartbeat before the kill", c.LiveNodes(), func() bool { return seat.Token() != tok })

	c.Kill(leader)
	survivors := c.LiveNodes()
	until("a token signed by the new leader", survivors, func() bool { return tokenKid(t, seat.Token()) != oldKid })
	newLeader := c.WaitLeader()
	tok = seat.Token()
	until("one more heartbeat after the failover", survivors, func() bool { return seat.Token() != tok })
	t.Logf("seat held through the kill of %s; %s leads, lease %s", c.NodeID(leader), c.NodeID(newLeader), lease.ID)

	if got := seat.Lease().ID; got != lease.ID {
		t.Errorf("lease %s after the failover, want the first one, %s", got, lease.ID)
	}
	if evs := seen(); len(evs) != 1 || evs[0].State != client.SeatHeld || evs[0].Lease.ID != lease.ID {
		t.Errorf("seat events %+v, want only the first held", evs)
	}
	live, err := leaseIDs(c, newLeader, lic.ID)
	if err != nil {
		t.Fatalf("leases through %s: %v", c.NodeID(newLeader), err)
	}
	if _, ok := live[lease.ID]; len(live) != 1 || !ok {
		t.Errorf("live leases %v, want only %s", sortedIDs(live), lease.ID)
	}
	recs, err := c.Audit(newLeader, api.ConsistencyLinearizable)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	if n := countAudit(recs, lic.ID, "lease.checkout"); n != 1 {
		t.Errorf("%d lease.checkout records, want 1", n)
	}

	if err := seat.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	u, err := seats(c, newLeader, lic.Key, "cad", api.ConsistencyLinearizable)
	if err != nil || u.InUse != 0 {
		t.Errorf("after Close: seats %+v, %v; want none in use", u, err)
	}
	c.CheckInvariants(t)
}

// tokenKid is the key id in a token's header.
func tokenKid(t *testing.T, tok string) string {
	t.Helper()
	kid, err := token.KeyIDOfToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

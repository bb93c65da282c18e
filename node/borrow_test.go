package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/token"
)

// A borrowed seat needs no heartbeats, survives a failover, carries its
// borrow end in the token as the offline proof, and an early checkin frees
// it.
func TestBorrowedSeat(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	cl := c.clientAll()
	lic := provision(t, cl, 1, 1) // 1 cad seat, heartbeat TTL 1 s
	borrowCO := func(machine string, hours int64) (*api.LeaseResponse, error) {
		return cl.Checkout(ctx, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad",
			Holder: api.Holder{Machine: machine}, BorrowHours: hours})
	}
	if _, err := borrowCO("m1", 1); !errors.Is(err, api.ErrBorrowNotAllowed) {
		t.Fatalf("borrow on a policy without borrowing: %v", err)
	}
	limit := int64(72)
	if _, err := cl.UpdatePolicy(ctx, lic.PolicyID, api.UpdatePolicyRequest{MaxBorrowHours: &limit}); err != nil {
		t.Fatal(err)
	}
	_, err := borrowCO("m1", 73)
	if !errors.Is(err, api.ErrBorrowNotAllowed) || !strings.Contains(err.Error(), "72 hours") {
		t.Fatalf("borrow over the limit: %v", err)
	}

	start := time.Now()
	res, err := borrowCO("m1", 48)
	if err != nil {
		t.Fatal(err)
	}
	l := res.Lease
	if l.BorrowedUntil == nil || !l.ExpiresAt.Equal(*l.BorrowedUntil) ||
		l.ExpiresAt.Before(start.Add(48*time.Hour-time.Minute)) || l.ExpiresAt.After(time.Now().Add(48*time.Hour)) {
		t.Fatalf("borrowed lease = %+v", l)
	}
	claims, err := token.Verify(res.Token, keySet(t, cl), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if claims.BorrowedUntil != l.BorrowedUntil.Unix() || claims.ExpiresAt != claims.BorrowedUntil {
		t.Fatalf("claims exp %d borrow %d, want both %d", claims.ExpiresAt, claims.BorrowedUntil, l.BorrowedUntil.Unix())
	}
	// The token is the offline proof until the borrow end, not after.
	if _, err := token.Verify(res.Token, keySet(t, cl), l.BorrowedUntil.Add(-time.Minute)); err != nil {
		t.Fatalf("token a minute before the borrow end: %v", err)
	}
	if _, err := token.Verify(res.Token, keySet(t, cl), l.BorrowedUntil.Add(time.Second)); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("token after the borrow end: %v", err)
	}

	// Without heartbeats, across a failover, the seat stays taken while
	// leases with the 1 s TTL come and go.
	outlive := func(what string) {
		t.Helper()
		probe, err := cl.Checkout(ctx, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "viewer", Holder: api.Holder{Machine: "probe"}})
		if err != nil {
			t.Fatal(err)
		}
		c.eventually(10*time.Second, what+": a 1 s lease expires", func() bool {
			return c.nodes[c.waitLeader()].n.FSM().LeaseEnded(probe.Lease.ID)
		})
		if _, live := c.nodes[c.waitLeader()].n.FSM().Lease(l.ID); !live {
			t.Fatalf("%s: borrowed lease ended", what)
		}
		if _, err := borrowCO("m2", 0); !errors.Is(err, api.ErrNoSeats) {
			t.Fatalf("%s: second checkout: %v, want no_seats_available", what, err)
		}
	}
	outlive("no heartbeats")
	c.kill(c.waitLeader())
	outlive("after failover")

	// A heartbeat answers a fresh token for the same borrow end.
	hb, err := cl.Heartbeat(ctx, l.ID, lic.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !hb.Lease.ExpiresAt.Equal(l.ExpiresAt) || hb.Lease.BorrowedUntil == nil {
		t.Fatalf("heartbeat moved the borrow: %+v, was %+v", hb.Lease, l)
	}

	if err := cl.Checkin(ctx, l.ID, lic.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := borrowCO("m2", 0); err != nil {
		t.Fatalf("checkout after the early checkin: %v", err)
	}
	var audited bool
	for _, r := range c.nodes[c.waitLeader()].n.FSM().Audit(0, 0) {
		audited = audited || r.LeaseID == l.ID && r.Type == "lease.checkout" && strings.HasPrefix(r.Detail, "borrow hours=48")
	}
	if !audited {
		t.Fatal("no lease.checkout record says it is a borrow")
	}
	c.checkInvariants()
}

package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
	"github.com/tallyhq/tally/token"
)

// No lease, and no token, outlives its license: on a license expiring in a
// few seconds with a 60 s lease TTL, a checkout, a heartbeat and a 72 h
// borrow all end at the license's expiry; a new leader's re-arm does not
// stretch them; and the leader reaps them there, long before the TTL.
func TestLeaseEndsWithItsLicense(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	cl := c.clientAll()
	base := provision(t, cl, 2, 60) // 2 cad seats, lease TTL 60 s
	borrowLimit := int64(72)
	if _, err := cl.UpdatePolicy(ctx, base.PolicyID, api.UpdatePolicyRequest{MaxBorrowHours: &borrowLimit}); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(6 * time.Second).UTC().Truncate(time.Second)
	lic, err := cl.CreateLicense(ctx, api.CreateLicenseRequest{PolicyID: base.PolicyID, Customer: "Term Inc", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	keys := keySet(t, cl)
	// endsByExpiry checks an answer: expires_at (and a borrow's end) is the
	// license's expiry, and so is the token's exp.
	endsByExpiry := func(what string, res *api.LeaseResponse) {
		t.Helper()
		l := res.Lease
		if !l.ExpiresAt.Equal(exp) || (l.BorrowedUntil != nil && !l.BorrowedUntil.Equal(exp)) {
			t.Fatalf("%s: expires_at %v borrowed_until %v, want the license's expiry %v", what, l.ExpiresAt, l.BorrowedUntil, exp)
		}
		claims, err := token.Verify(res.Token, keys, time.Now())
		if err != nil {
			t.Fatalf("%s: token: %v", what, err)
		}
		if claims.ExpiresAt != exp.Unix() || (claims.BorrowedUntil != 0 && claims.BorrowedUntil != exp.Unix()) {
			t.Fatalf("%s: token exp %d borrowed_until %d, want %d", what, claims.ExpiresAt, claims.BorrowedUntil, exp.Unix())
		}
	}

	co, err := checkout(cl, lic.Key, "m1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	endsByExpiry("checkout", co)
	hb, err := cl.Heartbeat(ctx, co.Lease.ID, lic.Key)
	if err != nil {
		t.Fatal(err)
	}
	endsByExpiry("heartbeat", hb)
	borrowed, err := cl.Checkout(ctx, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad",
		Holder: api.Holder{Machine: "m2"}, BorrowHours: 72})
	if err != nil {
		t.Fatal(err)
	}
	if borrowed.Lease.BorrowedUntil == nil {
		t.Fatalf("borrow answered %+v", borrowed.Lease)
	}
	endsByExpiry("borrow", borrowed)
	ids := []string{co.Lease.ID, borrowed.Lease.ID}

	// A new leader re-arms with max(stored, now+TTL), capped at the
	// license's expiry: what it holds (and lists) ends there at the latest.
	c.kill(c.waitLeader())
	leader := c.nodes[c.waitLeader()]
	ls, err := leader.n.Leases(ctx, lic.ID, api.ConsistencyStale)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.ExpiresAt.After(exp) {
			t.Fatalf("after the failover lease %s expires at %v, past the license's expiry %v", l.ID, l.ExpiresAt, exp)
		}
	}

	// The leader reaps both at the license's expiry: the 60 s TTL and the
	// 72 h borrow are far off.
	f := leader.n.FSM()
	c.eventually(20*time.Second, "both leases to end with the license", func() bool {
		return f.LeaseCount() == 0
	})
	if time.Now().Before(exp) {
		t.Fatalf("leases ended before the license's expiry %v", exp)
	}
	for _, id := range ids {
		assertAudited(t, f, fsm.AuditLeaseExpired, id)
	}
	if u := f.Usage(lic.ID)["cad"]; u.InUse != 0 {
		t.Fatalf("seats in use after the license expired: %+v", u)
	}
	c.checkInvariants()
}

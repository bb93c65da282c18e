package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
	"github.com/tallyhq/tally/token"
)

// TestOverridesDurationAndUsageThroughTheAPI: through a follower (writes
// forwarded), a policy duration gives a license its expiry, a license's
// seat override replaces the policy's count for it alone and can be
// changed, and GET /v1/licenses/{id} reports the usage counters the same
// on every node.
func TestOverridesDurationAndUsageThroughTheAPI(t *testing.T) {
	c := newTestCluster(t, 3)
	cl := c.client(c.followers()[0])
	ctx := context.Background()
	base := provision(t, cl, 1, 60) // cad: 1 seat
	day := int64(24 * 60 * 60)
	if _, err := cl.UpdatePolicy(ctx, base.PolicyID, api.UpdatePolicyRequest{DurationSeconds: &day}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	lic, err := cl.CreateLicense(ctx, api.CreateLicenseRequest{PolicyID: base.PolicyID, Customer: "bigger",
		Overrides: &api.LicenseOverrides{Seats: map[string]int{"cad": 2}, LeaseTTLSeconds: 30}})
	if err != nil {
		t.Fatal(err)
	}
	if lic.ExpiresAt == nil || lic.ExpiresAt.Before(before.Add(24*time.Hour-time.Minute)) || lic.ExpiresAt.After(time.Now().Add(24*time.Hour)) {
		t.Fatalf("expires_at = %v, want about a day from now", lic.ExpiresAt)
	}
	if lic.Overrides == nil || lic.Overrides.Seats["cad"] != 2 || lic.Seats["cad"].Total != 2 {
		t.Fatalf("license = %+v overrides %+v", lic, lic.Overrides)
	}

	first, err := checkout(cl, lic.Key, "m1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got := first.Lease.ExpiresAt.Sub(first.Lease.IssuedAt); got != 30*time.Second {
		t.Fatalf("lease TTL %s, want the override's 30s", got)
	}
	if _, err := checkout(cl, lic.Key, "m2", "r2"); err != nil {
		t.Fatalf("second seat (override 2): %v", err)
	}
	if _, err := checkout(cl, lic.Key, "m3", "r3"); !errors.Is(err, api.ErrNoSeats) {
		t.Fatalf("third seat: %v", err)
	}
	if _, err := checkout(cl, base.Key, "m1", "b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := checkout(cl, base.Key, "m2", "b2"); !errors.Is(err, api.ErrNoSeats) {
		t.Fatalf("the other license kept the policy's 1 seat: %v", err)
	}

	upd, err := cl.UpdateLicense(ctx, lic.ID, api.UpdateLicenseRequest{Overrides: &api.LicenseOverrides{Seats: map[string]int{"cad": 3}}})
	if err != nil || upd.Seats["cad"].Total != 3 {
		t.Fatalf("update: %+v %v", upd, err)
	}
	if _, err := checkout(cl, lic.Key, "m3", "r4"); err != nil {
		t.Fatalf("third seat after the update: %v", err)
	}
	_, err = cl.UpdateLicense(ctx, lic.ID, api.UpdateLicenseRequest{Overrides: &api.LicenseOverrides{Seats: map[string]int{"render": 1}}})
	if !errors.Is(err, api.ErrInvalidRequest) {
		t.Fatalf("override of a feature not in the policy: %v", err)
	}

	// A license file carries the license's own seat counts.
	until := time.Now().Add(time.Hour)
	out, err := cl.ExportLicense(ctx, lic.ID, api.ExportLicenseRequest{Until: &until})
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := cl.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var jwk []token.JWK
	for _, k := range jwks.Keys {
		jwk = append(jwk, token.JWK(k))
	}
	keys, err := token.KeySetFromJWKs(jwk)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := token.VerifyLicense(out.LicenseFile, keys, time.Now(), "")
	if err != nil || token.FormatFeatures(claims.Features) != "cad=3, viewer" {
		t.Fatalf("license file features %+v, %v; want cad=3, viewer", claims, err)
	}

	c.waitApplied()
	for i := range c.nodes {
		got, err := c.client(i).License(ctx, lic.ID, client.WithConsistency(api.ConsistencyStale))
		if err != nil {
			t.Fatal(err)
		}
		u := got.Usage["cad"]
		if u.Granted != 3 || u.Denied != 1 || u.PeakInUse != 3 || u.PeakAt == nil {
			t.Fatalf("node %d: usage = %+v", i, got.Usage)
		}
	}
	c.checkInvariants()
}

package clustertest

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/api"
)

// Seats is a counted feature for ProvisionLicense.
func Seats(name string, n int) api.Feature { return api.Feature{Name: name, Seats: &n} }

var provisioned atomic.Int64

// ProvisionLicense creates a product, a policy with the given features,
// lease TTL and seat rule "process" (every checkout takes its own seat), and
// a license on it, through any node. It returns the license with its key.
func (c *Cluster) ProvisionLicense(leaseTTL time.Duration, features ...api.Feature) *api.License {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := provisioned.Add(1)
	cl := c.ClientAll()
	prod, err := cl.CreateProduct(ctx, api.CreateProductRequest{Name: fmt.Sprintf("product-%d", n)})
	if err != nil {
		c.t.Fatalf("create product: %v", err)
	}
	pol, err := cl.CreatePolicy(ctx, api.CreatePolicyRequest{
		ProductID:       prod.ID,
		Name:            fmt.Sprintf("policy-%d", n),
		Features:        features,
		LeaseTTLSeconds: int64(leaseTTL / time.Second),
		SeatRule:        api.SeatRuleProcess,
	})
	if err != nil {
		c.t.Fatalf("create policy: %v", err)
	}
	lic, err := cl.CreateLicense(ctx, api.CreateLicenseRequest{PolicyID: pol.ID, Customer: fmt.Sprintf("customer-%d", n)})
	if err != nil {
		c.t.Fatalf("create license: %v", err)
	}
	if lic.ID == "" || lic.Key == "" {
		c.t.Fatalf("create license: answer without id or key: %+v", lic)
	}
	return lic
}

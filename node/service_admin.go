package node

import (
	"context"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
)

func (n *Node) CreateProduct(ctx context.Context, req api.CreateProductRequest) (*api.Product, error) {
	id, err := newID("prd")
	if err != nil {
		return nil, err
	}
	res, err := n.apply(fsm.CmdCreateProduct, &fsm.CreateProduct{ID: id, Name: req.Name, Time: n.now()})
	if err != nil {
		return nil, err
	}
	p := toProduct(*res.Product)
	return &p, nil
}

func (n *Node) Products(ctx context.Context, consistency string) ([]api.Product, error) {
	if err := n.read(ctx, consistency); err != nil {
		return nil, err
	}
	var out []api.Product
	for _, p := range n.fsm.Products() {
		out = append(out, toProduct(p))
	}
	return out, nil
}

func (n *Node) Product(ctx context.Context, id, consistency string) (*api.Product, error) {
	if err := n.read(ctx, consistency); err != nil {
		return nil, err
	}
	p, ok := n.fsm.Product(id)
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "no such product")
	}
	out := toProduct(p)
	return &out, nil
}

func (n *Node) CreatePolicy(ctx context.Context, req api.CreatePolicyRequest) (*api.Policy, error) {
	id, err := newID("pol")
	if err != nil {
		return nil, err
	}
	res, err := n.apply(fsm.CmdCreatePolicy, &fsm.CreatePolicy{
		Policy: fsm.Policy{
			ID:             id,
			ProductID:      req.ProductID,
			Name:           req.Name,
			Features:       fromFeatures(req.Features),
			LeaseTTL:       req.LeaseTTLSeconds * int64(time.Second),
			SeatRule:       req.SeatRule,
			MaxBorrowHours: req.MaxBorrowHours,
			Duration:       req.DurationSeconds * int64(time.Second),
		},
		Time: n.now(),
	})
	if err != nil {
		return nil, err
	}
	p := toPolicy(*res.Policy)
	return &p, nil
}

func (n *Node) UpdatePolicy(ctx context.Context, id string, req api.UpdatePolicyRequest) (*api.Policy, error) {
	cmd := &fsm.UpdatePolicy{ID: id, Name: req.Name, SeatRule: req.SeatRule, MaxBorrowHours: req.MaxBorrowHours, Time: n.now()}
	if req.Features != nil {
		fs := fromFeatures(*req.Features)
		cmd.Features = &fs
	}
	if req.LeaseTTLSeconds != nil {
		ttl := *req.LeaseTTLSeconds * int64(time.Second)
		cmd.LeaseTTL = &ttl
	}
	if req.DurationSeconds != nil {
		d := *req.DurationSeconds * int64(time.Second)
		cmd.Duration = &d
	}
	res, err := n.apply(fsm.CmdUpdatePolicy, cmd)
	if err != nil {
		return nil, err
	}
	p := toPolicy(*res.Policy)
	return &p, nil
}

func (n *Node) Policies(ctx context.Context, consistency string) ([]api.Policy, error) {
	if err := n.read(ctx, consistency); err != nil {
		return nil, err
	}
	var out []api.Policy
	for _, p := range n.fsm.Policies() {
		out = append(out, toPolicy(p))
	}
	return out, nil
}

func (n *Node) Policy(ctx context.Context, id, consistency string) (*api.Policy, error) {
	if err := n.read(ctx, consistency); err != nil {
		return nil, err
	}
	p, ok := n.fsm.Policy(id)
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "no such policy")
	}
	out := toPolicy(p)
	return &out, nil
}

func (n *Node) CreateLicense(ctx context.Context, req api.CreateLicenseRequest) (*api.License, error) {
	id, err := newID("lic")
	if err != nil {
		return nil, err
	}
	key, err := newLicenseKey()
	if err != nil {
		return nil, err
	}
	lic := fsm.License{ID: id, Key: key, PolicyID: req.PolicyID, Customer: req.Customer, Metadata: req.Metadata,
		Overrides: fromOverrides(req.Overrides)}
	if req.ExpiresAt != nil {
		lic.ExpiresAt = req.ExpiresAt.UnixNano()
	}
	res, err := n.apply(fsm.CmdCreateLicense, &fsm.CreateLicense{License: lic, Time: n.now()})
	if err != nil {
		return nil, err
	}
	out := n.toLicense(*res.License)
	return &out, nil
}

func (n *Node) Licenses(ctx context.Context, consistency string) ([]api.License, error) {
	if err := n.read(ctx, consistency); err != nil {
		return nil, err
	}
	var out []api.License
	for _, l := range n.fsm.Licenses() {
		out = append(out, n.toLicense(l))
	}
	return out, nil
}

func (n *Node) License(ctx context.Context, id, consistency string) (*api.License, error) {
	if err := n.read(ctx, consistency); err != nil {
		return nil, err
	}
	l, ok := n.fsm.License(id)
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "no such license")
	}
	out := n.toLicense(l)
	return &out, nil
}

func (n *Node) SetLicenseStatus(ctx context.Context, id, status string) (*api.License, error) {
	res, err := n.apply(fsm.CmdSetLicenseStatus, &fsm.SetLicenseStatus{ID: id, Status: status, Time: n.now()})
	if err != nil {
		return nil, err
	}
	out := n.toLicense(*res.License)
	return &out, nil
}

// Leases lists live leases; on the leader their expires_at is the in-memory
// deadline that heartbeats move, elsewhere the last replicated one.
func (n *Node) Leases(ctx context.Context, licenseID, consistency string) ([]api.Lease, error) {
	if err := n.read(ctx, consistency); err != nil {
		return nil, err
	}
	if licenseID != "" {
		if _, ok := n.fsm.License(licenseID); !ok {
			return nil, api.Errorf(api.CodeNotFound, "no such license")
		}
	}
	var out []api.Lease
	for _, ls := range n.fsm.Leases(licenseID) {
		if at, ok := n.lessor.deadline(ls.ID); ok && at > ls.ExpiresAt {
			ls.ExpiresAt = at
		}
		out = append(out, toLease(ls))
	}
	return out, nil
}

func (n *Node) RevokeLease(ctx context.Context, id string) error {
	_, err := n.apply(fsm.CmdRevokeLease, &fsm.RevokeLease{LeaseID: id, Time: n.now()})
	return err
}

func (n *Node) Audit(ctx context.Context, after uint64, limit int, consistency string) ([]api.AuditRecord, error) {
	if err := n.read(ctx, consistency); err != nil {
		return nil, err
	}
	var out []api.AuditRecord
	for _, r := range n.fsm.Audit(after, limit) {
		out = append(out, toAudit(r))
	}
	return out, nil
}

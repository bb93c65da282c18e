package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tallyhq/tally/api"
)

// ReadOption tunes an admin read.
type ReadOption func(url.Values)

// WithConsistency asks for a stale (any node, from memory) or linearizable
// (confirmed with the leader; the server's default) read.
func WithConsistency(level string) ReadOption {
	return func(q url.Values) {
		if level != "" {
			q.Set("consistency", level)
		}
	}
}

// get is a repeatable read of path into out.
func (c *Client) get(ctx context.Context, path string, q url.Values, opts []ReadOption, out any) error {
	if len(opts) > 0 {
		if q == nil {
			q = url.Values{}
		}
		for _, o := range opts {
			o(q)
		}
	}
	return c.do(ctx, call{method: http.MethodGet, path: path, query: q, out: out, repeatable: true})
}

// change is an admin write: retried only when provably not processed.
func (c *Client) change(ctx context.Context, method, path string, body, out any) error {
	return c.do(ctx, call{method: method, path: path, body: body, out: out})
}

func seg(id string) string { return url.PathEscape(id) }

// --- desktop ---

// Checkout takes a seat. An empty RequestID is filled with a random UUID;
// every retry sends the same id, so a retry after failover never takes a
// second seat.
func (c *Client) Checkout(ctx context.Context, req api.CheckoutRequest) (*api.LeaseResponse, error) {
	if req.RequestID == "" {
		req.RequestID = newRequestID()
	}
	var out api.LeaseResponse
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/checkout", body: req, out: &out, repeatable: true})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Heartbeat keeps a lease alive and returns it with its new expires_at.
func (c *Client) Heartbeat(ctx context.Context, leaseID, licenseKey string) (*api.LeaseResponse, error) {
	return c.heartbeat(ctx, leaseID, licenseKey, 0)
}

func (c *Client) heartbeat(ctx context.Context, leaseID, licenseKey string, budget time.Duration) (*api.LeaseResponse, error) {
	var out api.LeaseResponse
	err := c.do(ctx, call{
		method: http.MethodPost, path: "/v1/leases/" + seg(leaseID) + "/heartbeat",
		body: api.LicenseKeyRequest{LicenseKey: licenseKey}, out: &out, repeatable: true, budget: budget,
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Checkin gives a seat back. Checking in twice is not an error.
func (c *Client) Checkin(ctx context.Context, leaseID, licenseKey string) error {
	return c.do(ctx, call{
		method: http.MethodPost, path: "/v1/leases/" + seg(leaseID) + "/checkin",
		body: api.LicenseKeyRequest{LicenseKey: licenseKey}, repeatable: true,
	})
}

// Validate asks whether a license may be used. consistency is
// api.ConsistencyStale, api.ConsistencyLinearizable or "" (server default,
// stale).
func (c *Client) Validate(ctx context.Context, req api.ValidateRequest, consistency string) (*api.ValidateResponse, error) {
	var q url.Values
	if consistency != "" {
		q = url.Values{"consistency": {consistency}}
	}
	var out api.ValidateResponse
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/validate", query: q, body: req, out: &out, repeatable: true})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Keys returns the cluster's public token-signing keys.
func (c *Client) Keys(ctx context.Context) (*api.JWKS, error) {
	var out api.JWKS
	if err := c.get(ctx, "/v1/keys", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// --- products ---

// CreateProduct adds a product.
func (c *Client) CreateProduct(ctx context.Context, req api.CreateProductRequest) (*api.Product, error) {
	var out api.Product
	if err := c.change(ctx, http.MethodPost, "/v1/products", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Products lists every product.
func (c *Client) Products(ctx context.Context, opts ...ReadOption) (*api.ProductList, error) {
	var out api.ProductList
	if err := c.get(ctx, "/v1/products", nil, opts, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Product returns one product.
func (c *Client) Product(ctx context.Context, id string, opts ...ReadOption) (*api.Product, error) {
	var out api.Product
	if err := c.get(ctx, "/v1/products/"+seg(id), nil, opts, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// --- policies ---

// CreatePolicy adds a policy.
func (c *Client) CreatePolicy(ctx context.Context, req api.CreatePolicyRequest) (*api.Policy, error) {
	var out api.Policy
	if err := c.change(ctx, http.MethodPost, "/v1/policies", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Policies lists every policy.
func (c *Client) Policies(ctx context.Context, opts ...ReadOption) (*api.PolicyList, error) {
	var out api.PolicyList
	if err := c.get(ctx, "/v1/policies", nil, opts, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Policy returns one policy.
func (c *Client) Policy(ctx context.Context, id string, opts ...ReadOption) (*api.Policy, error) {
	var out api.Policy
	if err := c.get(ctx, "/v1/policies/"+seg(id), nil, opts, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdatePolicy changes the non-nil fields of req; every license on the
// policy sees the change at once.
func (c *Client) UpdatePolicy(ctx context.Context, id string, req api.UpdatePolicyRequest) (*api.Policy, error) {
	var out api.Policy
	if err := c.change(ctx, http.MethodPatch, "/v1/policies/"+seg(id), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// --- licenses ---

// CreateLicense issues a license; the answer carries its key.
func (c *Client) CreateLicense(ctx context.Context, req api.CreateLicenseRequest) (*api.License, error) {
	var out api.License
	if err := c.change(ctx, http.MethodPost, "/v1/licenses", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Licenses lists every license with its live seat usage.
func (c *Client) Licenses(ctx context.Context, opts ...ReadOption) (*api.LicenseList, error) {
	var out api.LicenseList
	if err := c.get(ctx, "/v1/licenses", nil, opts, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// License returns one license with its live seat usage.
func (c *Client) License(ctx context.Context, id string, opts ...ReadOption) (*api.License, error) {
	var out api.License
	if err := c.get(ctx, "/v1/licenses/"+seg(id), nil, opts, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) licenseAction(ctx context.Context, id, action string) (*api.License, error) {
	var out api.License
	if err := c.change(ctx, http.MethodPost, "/v1/licenses/"+seg(id)+"/"+action, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SuspendLicense stops a license from taking or keeping seats until reinstated.
func (c *Client) SuspendLicense(ctx context.Context, id string) (*api.License, error) {
	return c.licenseAction(ctx, id, "suspend")
}

// ReinstateLicense makes a suspended license active again.
func (c *Client) ReinstateLicense(ctx context.Context, id string) (*api.License, error) {
	return c.licenseAction(ctx, id, "reinstate")
}

// RevokeLicense ends a license for good.
func (c *Client) RevokeLicense(ctx context.Context, id string) (*api.License, error) {
	return c.licenseAction(ctx, id, "revoke")
}

// --- leases ---

// LicenseLeases lists the live leases of one license.
func (c *Client) LicenseLeases(ctx context.Context, licenseID string, opts ...ReadOption) (*api.LeaseList, error) {
	var out api.LeaseList
	if err := c.get(ctx, "/v1/licenses/"+seg(licenseID)+"/leases", nil, opts, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Leases lists live leases, of one license when licenseID is not empty.
func (c *Client) Leases(ctx context.Context, licenseID string, opts ...ReadOption) (*api.LeaseList, error) {
	var q url.Values
	if licenseID != "" {
		q = url.Values{"license_id": {licenseID}}
	}
	var out api.LeaseList
	if err := c.get(ctx, "/v1/leases", q, opts, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeLease force-releases a lease; its holder's next heartbeat gets
// lease_expired.
func (c *Client) RevokeLease(ctx context.Context, id string) error {
	return c.change(ctx, http.MethodDelete, "/v1/leases/"+seg(id), nil, nil)
}

// Audit returns audit records with index > after, at most limit of them
// (limit <= 0: the server's default).
func (c *Client) Audit(ctx context.Context, after uint64, limit int, opts ...ReadOption) (*api.AuditList, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.AuditList
	if err := c.get(ctx, "/v1/audit", q, opts, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// --- cluster ---

// Status returns the answering node's Raft view. Pin a node with Node to ask
// a given one.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var out api.Status
	if err := c.get(ctx, "/v1/status", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Members lists the nodes gossip knows.
func (c *Client) Members(ctx context.Context) (*api.MemberList, error) {
	var out api.MemberList
	if err := c.get(ctx, "/v1/cluster/members", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RaftConfiguration lists the Raft peers.
func (c *Client) RaftConfiguration(ctx context.Context) (*api.RaftConfiguration, error) {
	var out api.RaftConfiguration
	if err := c.get(ctx, "/v1/cluster/raft", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TransferLeadership asks the leader to hand over to node id ("" lets Raft
// pick) and returns the answering node's status afterwards.
func (c *Client) TransferLeadership(ctx context.Context, id string) (*api.Status, error) {
	var out api.Status
	err := c.change(ctx, http.MethodPost, "/v1/cluster/transfer-leadership", api.TransferLeadershipRequest{ID: id}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// RemovePeer removes node id from the Raft configuration.
func (c *Client) RemovePeer(ctx context.Context, id string) error {
	return c.change(ctx, http.MethodDelete, "/v1/cluster/raft/"+seg(id), nil, nil)
}

// Snapshot streams a Raft snapshot of the cluster state into w. It retries
// only until the first byte has been written.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) error {
	return c.do(ctx, call{method: http.MethodGet, path: "/v1/cluster/snapshot", stream: w, repeatable: true})
}

// RestoreSnapshot uploads a snapshot saved by Snapshot (size bytes of
// src) and replaces the whole state of every node with it. progress, when
// not nil, is called with the bytes sent so far. It is retried only when
// the upload provably did not reach a node or a node answered 503: a
// retried restore installs the same state again.
func (c *Client) RestoreSnapshot(ctx context.Context, src io.ReaderAt, size int64, progress func(sent int64)) (*api.SnapshotRestore, error) {
	var out api.SnapshotRestore
	err := c.do(ctx, call{method: http.MethodPut, path: "/v1/cluster/snapshot", out: &out,
		upload: &upload{src: src, size: size, progress: progress}})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ExportLicense signs an offline license file for license id, optionally
// locked to a machine fingerprint and ended before the license's own
// expiry (see docs/offline.md). Exporting holds no state, so it is retried
// like a read.
func (c *Client) ExportLicense(ctx context.Context, id string, req api.ExportLicenseRequest) (*api.LicenseExport, error) {
	var out api.LicenseExport
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/licenses/" + seg(id) + "/export", body: req, out: &out, repeatable: true})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

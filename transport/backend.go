package transport

import (
	"context"
	"io"

	"github.com/tallyhq/tally/api"
)

// Backend is what the HTTP layer needs from a node. Errors are *api.Error
// for answers the client should see, or *NotLeaderError for requests only
// the leader may serve; anything else is a 500.
type Backend interface {
	Checkout(ctx context.Context, req api.CheckoutRequest) (*api.LeaseResponse, error)
	Heartbeat(ctx context.Context, leaseID, licenseKey string) (*api.LeaseResponse, error)
	Checkin(ctx context.Context, leaseID, licenseKey string) error
	Validate(ctx context.Context, req api.ValidateRequest, consistency string) (*api.ValidateResponse, error)
	Keys() api.JWKS

	CreateProduct(ctx context.Context, req api.CreateProductRequest) (*api.Product, error)
	Products(ctx context.Context, consistency string) ([]api.Product, error)
	Product(ctx context.Context, id, consistency string) (*api.Product, error)
	CreatePolicy(ctx context.Context, req api.CreatePolicyRequest) (*api.Policy, error)
	UpdatePolicy(ctx context.Context, id string, req api.UpdatePolicyRequest) (*api.Policy, error)
	Policies(ctx context.Context, consistency string) ([]api.Policy, error)
	Policy(ctx context.Context, id, consistency string) (*api.Policy, error)
	CreateLicense(ctx context.Context, req api.CreateLicenseRequest) (*api.License, error)
	Licenses(ctx context.Context, consistency string) ([]api.License, error)
	License(ctx context.Context, id, consistency string) (*api.License, error)
	SetLicenseStatus(ctx context.Context, id, status string) (*api.License, error)
	Leases(ctx context.Context, licenseID, consistency string) ([]api.Lease, error)
	RevokeLease(ctx context.Context, id string) error
	Audit(ctx context.Context, after uint64, limit int, consistency string) ([]api.AuditRecord, error)
	// ExportLicense signs a license file; the leader signs, followers forward.
	ExportLicense(ctx context.Context, id string, req api.ExportLicenseRequest) (*api.LicenseExport, error)

	Status(withHash bool) api.Status
	Members() []api.Member
	RaftConfiguration() (*api.RaftConfiguration, error)
	TransferLeadership(ctx context.Context, id string) error
	RemovePeer(ctx context.Context, id string) error
	WriteSnapshot(w io.Writer) error
	// RestoreSnapshot replaces the whole replicated state with a snapshot
	// of size bytes read from src; the leader restores, followers forward.
	RestoreSnapshot(ctx context.Context, src io.ReaderAt, size int64) (*api.SnapshotRestore, error)
	// LeaderAddr waits up to the node's leader wait for a known leader
	// whose HTTP address is not stale (the one that just refused a
	// connection) and returns it, or "" if none appeared.
	LeaderAddr(ctx context.Context, stale string) string
	// ReadIndex is the leader's half of a linearizable read: confirm
	// leadership and return the index to wait for. That is the leader's
	// last applied command, not its commit index: Raft's no-op and
	// barrier entries never reach the FSM, so a follower waiting for
	// them would wait forever (node/doc.go).
	ReadIndex(ctx context.Context) (uint64, error)

	KeyBackend
	LicenseUpdateBackend
}

// NotLeaderError says the request must be served by the leader. LeaderAddr
// is its HTTP address, empty while no leader is known.
type NotLeaderError struct {
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAddr == "" {
		return "not the leader, and no leader is known"
	}
	return "not the leader; leader is at " + e.LeaderAddr
}

package api

import "time"

// Holder names who holds a seat. Which fields make two leases share one seat
// is decided by the policy's seat rule (SeatRuleProcess, SeatRuleMachine,
// SeatRuleUser).
type Holder struct {
	Machine  string `json:"machine"`
	User     string `json:"user,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Process  string `json:"process,omitempty"`
}

// Seat counting rules of a policy.
const (
	SeatRuleProcess = "process" // every checkout takes its own seat
	SeatRuleMachine = "machine" // checkouts from one machine share a seat
	SeatRuleUser    = "user"    // checkouts by one user share a seat
)

// License statuses.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
	StatusRevoked   = "revoked"
)

// Read consistency levels for validate and the admin reads.
const (
	ConsistencyStale        = "stale"
	ConsistencyLinearizable = "linearizable"
)

// CheckoutRequest is the body of POST /v1/checkout.
type CheckoutRequest struct {
	LicenseKey string `json:"license_key"`
	Feature    string `json:"feature"`
	Holder     Holder `json:"holder"`
	// RequestID makes the checkout exactly-once: a retry with the same id
	// answers the original lease instead of taking a second seat.
	RequestID  string `json:"request_id"`
	TTLSeconds int64  `json:"ttl_seconds,omitempty"`
	// BorrowHours borrows the seat for that many hours (up to the
	// policy's max_borrow_hours): no heartbeats needed until then.
	BorrowHours int64 `json:"borrow_hours,omitempty"`
}

// LicenseKeyRequest is the body of heartbeat and checkin.
type LicenseKeyRequest struct {
	LicenseKey string `json:"license_key"`
}

// Lease is one checked-out seat.
type Lease struct {
	ID        string    `json:"id"`
	LicenseID string    `json:"license_id"`
	Feature   string    `json:"feature"`
	Holder    Holder    `json:"holder"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// BorrowedUntil is set on a borrowed lease: the borrow end.
	BorrowedUntil *time.Time `json:"borrowed_until,omitempty"`
}

// LeaseResponse answers checkout and heartbeat.
type LeaseResponse struct {
	Lease Lease  `json:"lease"`
	Token string `json:"token"`
}

// ValidateRequest is the body of POST /v1/validate.
type ValidateRequest struct {
	LicenseKey string `json:"license_key"`
	Feature    string `json:"feature,omitempty"`
	Machine    string `json:"machine,omitempty"`
}

// SeatUsage is the live use of one feature. Total is -1 for a feature that is
// entitled but not counted.
type SeatUsage struct {
	Total int `json:"total"`
	InUse int `json:"in_use"`
}

// ValidateResponse answers POST /v1/validate. Valid is false with a Code
// (license_suspended, feature_not_entitled, ...) when the license exists but
// may not be used; an unknown key is a 401 instead.
type ValidateResponse struct {
	Valid         bool                 `json:"valid"`
	Code          string               `json:"code"`
	License       *License             `json:"license,omitempty"`
	Seats         map[string]SeatUsage `json:"seats"`
	NodeID        string               `json:"node_id"`
	AppliedIndex  uint64               `json:"applied_index"`
	LastContactMS int64                `json:"last_contact_ms"`
	Consistency   string               `json:"consistency"`
}

// Product is something that is licensed.
type Product struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateProductRequest is the body of POST /v1/products.
type CreateProductRequest struct {
	Name string `json:"name"`
}

// Feature is one entitlement of a policy. Seats nil means entitled without a
// seat count.
type Feature struct {
	Name  string `json:"name"`
	Seats *int   `json:"seats,omitempty"`
}

// Policy is the shared configuration of every license issued on it.
type Policy struct {
	ID              string    `json:"id"`
	ProductID       string    `json:"product_id"`
	Name            string    `json:"name"`
	Features        []Feature `json:"features"`
	LeaseTTLSeconds int64     `json:"lease_ttl_seconds"`
	SeatRule        string    `json:"seat_rule"`
	MaxBorrowHours  int64     `json:"max_borrow_hours"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	// DurationSeconds, when set, gives a license created on the policy
	// without expires_at one at its creation + this duration.
	DurationSeconds int64 `json:"duration_seconds,omitempty"`
}

// CreatePolicyRequest is the body of POST /v1/policies.
type CreatePolicyRequest struct {
	ProductID       string    `json:"product_id"`
	Name            string    `json:"name"`
	Features        []Feature `json:"features"`
	LeaseTTLSeconds int64     `json:"lease_ttl_seconds"`
	SeatRule        string    `json:"seat_rule,omitempty"`
	MaxBorrowHours  int64     `json:"max_borrow_hours,omitempty"`
	DurationSeconds int64     `json:"duration_seconds,omitempty"`
}

// UpdatePolicyRequest is the body of PATCH /v1/policies/{id}; nil fields
// are left as they are.
type UpdatePolicyRequest struct {
	Name            *string    `json:"name,omitempty"`
	Features        *[]Feature `json:"features,omitempty"`
	LeaseTTLSeconds *int64     `json:"lease_ttl_seconds,omitempty"`
	SeatRule        *string    `json:"seat_rule,omitempty"`
	MaxBorrowHours  *int64     `json:"max_borrow_hours,omitempty"`
	DurationSeconds *int64     `json:"duration_seconds,omitempty"`
}

// License grants a customer the features of its policy.
type License struct {
	ID        string               `json:"id"`
	Key       string               `json:"key,omitempty"`
	PolicyID  string               `json:"policy_id"`
	ProductID string               `json:"product_id"`
	Customer  string               `json:"customer"`
	Status    string               `json:"status"`
	ExpiresAt *time.Time           `json:"expires_at,omitempty"`
	Metadata  map[string]string    `json:"metadata,omitempty"`
	CreatedAt time.Time            `json:"created_at"`
	Seats     map[string]SeatUsage `json:"seats,omitempty"`
	// Overrides and Usage: see api/usage.go.
	Overrides *LicenseOverrides       `json:"overrides,omitempty"`
	Usage     map[string]FeatureUsage `json:"usage,omitempty"`
}

// CreateLicenseRequest is the body of POST /v1/licenses.
type CreateLicenseRequest struct {
	PolicyID  string            `json:"policy_id"`
	Customer  string            `json:"customer"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Overrides *LicenseOverrides `json:"overrides,omitempty"`
}

// AuditRecord is one link of the replicated, hash-chained audit log.
// Hash is hex(sha256(prev_hash bytes || canonical record)).
type AuditRecord struct {
	Index     uint64    `json:"index"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	LicenseID string    `json:"license_id,omitempty"`
	LeaseID   string    `json:"lease_id,omitempty"`
	Feature   string    `json:"feature,omitempty"`
	Holder    *Holder   `json:"holder,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	PrevHash  string    `json:"prev_hash"`
	Hash      string    `json:"hash"`
}

// LeaderInfo names the current leader as its peers know it.
type LeaderInfo struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
}

// Status answers GET /v1/status.
type Status struct {
	NodeID        string     `json:"node_id"`
	State         string     `json:"state"`
	Leader        LeaderInfo `json:"leader"`
	Term          uint64     `json:"term"`
	CommitIndex   uint64     `json:"commit_index"`
	AppliedIndex  uint64     `json:"applied_index"`
	LastContactMS int64      `json:"last_contact_ms"`
	StateHash     string     `json:"state_hash"`
	LiveLeases    int        `json:"live_leases"`
}

// Member is one node as gossip sees it.
type Member struct {
	ID         string `json:"id"`
	GossipAddr string `json:"gossip_addr"`
	HTTPAddr   string `json:"http_addr"`
	RaftAddr   string `json:"raft_addr"`
	Status     string `json:"status"` // alive, dead, left
}

// RaftServer is one voter or non-voter of the Raft configuration.
type RaftServer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// RaftConfiguration answers GET /v1/cluster/raft.
type RaftConfiguration struct {
	Servers []RaftServer `json:"servers"`
	Index   uint64       `json:"index"`
}

// TransferLeadershipRequest is the optional body of
// POST /v1/cluster/transfer-leadership; empty ID lets Raft pick.
type TransferLeadershipRequest struct {
	ID string `json:"id,omitempty"`
}

// JWK is one public key of GET /v1/keys (RFC 7517, RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Kid string `json:"kid"`
	X   string `json:"x"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
}

// JWKS answers GET /v1/keys.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// List wrappers keep room for paging fields without breaking clients.
type (
	ProductList struct {
		Products []Product `json:"products"`
	}
	PolicyList struct {
		Policies []Policy `json:"policies"`
	}
	LicenseList struct {
		Licenses []License `json:"licenses"`
	}
	LeaseList struct {
		Leases []Lease `json:"leases"`
	}
	AuditList struct {
		Records []AuditRecord `json:"records"`
		// NodeID names the node that answered: audit reads are served from
		// the answering node's own copy of the chain.
		NodeID string `json:"node_id,omitempty"`
	}
	MemberList struct {
		Members []Member `json:"members"`
	}
)

// ExportLicenseRequest is the body of POST /v1/licenses/{id}/export. Both
// fields are optional: Machine locks the file to one machine fingerprint;
// Until ends it before the license's own expiry.
type ExportLicenseRequest struct {
	Machine string     `json:"machine,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
}

// LicenseExport answers POST /v1/licenses/{id}/export: a signed license
// file (see docs/offline.md) and when it expires.
type LicenseExport struct {
	LicenseFile string    `json:"license_file"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// SnapshotRestore answers PUT /v1/cluster/snapshot: the snapshot replaced
// the state of the whole cluster.
type SnapshotRestore struct {
	// Index is the applied index the restored state starts at on every node.
	Index uint64 `json:"index"`
	// SavedIndex is the applied index the snapshot was saved at.
	SavedIndex   uint64 `json:"saved_index"`
	Bytes        int64  `json:"bytes"`
	Products     int    `json:"products"`
	Policies     int    `json:"policies"`
	Licenses     int    `json:"licenses"`
	Leases       int    `json:"leases"`
	AuditRecords int    `json:"audit_records"`
	SigningKeys  int    `json:"signing_keys"`
	// DurationMS is how long the leader took, from the upload received to
	// the restore committed by a quorum.
	DurationMS int64 `json:"duration_ms"`
}

package fsm

// This file is the contract between fsm and node: command encodings, the
// entity types readers get copies of, and the results Apply returns.
// Fields are only ever added; command type numbers are never reused.

// CommandType is the first byte of every Raft log entry Tally writes. The
// second byte is the body version (1, or up to 4 for Checkout: fsm.go); the rest
// is msgpack.
type CommandType uint8

// IgnoreUnknownFlag marks a command an older node may skip instead of
// stopping (Consul, Nomad): set it on purely advisory commands only.
const IgnoreUnknownFlag CommandType = 0x80

const (
	CmdCreateProduct    CommandType = 1
	CmdCreatePolicy     CommandType = 2
	CmdUpdatePolicy     CommandType = 3
	CmdCreateLicense    CommandType = 4
	CmdSetLicenseStatus CommandType = 5
	CmdCheckout         CommandType = 6
	CmdCheckin          CommandType = 7
	CmdRevokeLease      CommandType = 8
	CmdExpireLeases     CommandType = 9
	CmdCheckpointLeases CommandType = 10
	CmdRegisterKey      CommandType = 11
	CmdRotateKeys       CommandType = 12
	CmdRetireKey        CommandType = 13
	CmdUpdateLicense    CommandType = 14
)

// Seat rules and license statuses (same strings as the API).
const (
	SeatRuleProcess = "process"
	SeatRuleMachine = "machine"
	SeatRuleUser    = "user"

	StatusActive    = "active"
	StatusSuspended = "suspended"
	StatusRevoked   = "revoked"
)

// Refusal codes (same strings as the API error codes).
const (
	CodeInvalidRequest     = "invalid_request"
	CodeUnauthorized       = "unauthorized"
	CodeLicenseSuspended   = "license_suspended"
	CodeLicenseExpired     = "license_expired"
	CodeLicenseRevoked     = "license_revoked"
	CodeFeatureNotEntitled = "feature_not_entitled"
	CodeNotFound           = "not_found"
	CodeConflict           = "conflict"
	CodeNoSeatsAvailable   = "no_seats_available"
	CodeLeaseExpired       = "lease_expired"
	CodeBorrowNotAllowed   = "borrow_not_allowed"
	CodeKeyInUse           = "key_in_use"
)

// Audit record types.
const (
	AuditProductCreated    = "product.created"
	AuditPolicyCreated     = "policy.created"
	AuditPolicyUpdated     = "policy.updated"
	AuditLicenseCreated    = "license.created"
	AuditLicenseUpdated    = "license.updated"
	AuditLicenseSuspended  = "license.suspended"
	AuditLicenseReinstated = "license.reinstated"
	AuditLicenseRevoked    = "license.revoked"
	AuditLeaseCheckout     = "lease.checkout"
	AuditLeaseDenied       = "lease.denied"
	AuditLeaseCheckin      = "lease.checkin"
	AuditLeaseExpired      = "lease.expired"
	AuditLeaseRevoked      = "lease.revoked"
	AuditKeysRotated       = "keys.rotated"
	AuditKeyRetired        = "key.retired"
)

// Holder names who holds a lease.
type Holder struct {
	Machine  string `msgpack:"m"`
	User     string `msgpack:"u"`
	Hostname string `msgpack:"h"`
	Process  string `msgpack:"p"`
}

// Feature is one entitlement; Seats < 0 means entitled, not counted.
type Feature struct {
	Name  string `msgpack:"n"`
	Seats int    `msgpack:"s"`
}

// Product is something that is licensed.
type Product struct {
	ID        string `msgpack:"id"`
	Name      string `msgpack:"name"`
	CreatedAt int64  `msgpack:"created"`
}

// Policy is the shared configuration of every license on it.
type Policy struct {
	ID             string    `msgpack:"id"`
	ProductID      string    `msgpack:"product"`
	Name           string    `msgpack:"name"`
	Features       []Feature `msgpack:"features"`
	LeaseTTL       int64     `msgpack:"ttl"` // nanoseconds
	SeatRule       string    `msgpack:"rule"`
	MaxBorrowHours int64     `msgpack:"borrow"`
	CreatedAt      int64     `msgpack:"created"`
	UpdatedAt      int64     `msgpack:"updated"`
	// Duration (ns), when > 0, gives a license created on the policy
	// without an expiry one at its creation time + Duration. It is read
	// once, at creation: changing it changes no existing license's
	// expiry. omitempty keeps older policies' encoding (and hash).
	Duration int64 `msgpack:"duration,omitempty"`
}

// License grants a customer the features of its policy.
type License struct {
	ID        string            `msgpack:"id"`
	Key       string            `msgpack:"key"`
	PolicyID  string            `msgpack:"policy"`
	ProductID string            `msgpack:"product"`
	Customer  string            `msgpack:"customer"`
	Status    string            `msgpack:"status"`
	ExpiresAt int64             `msgpack:"expires"` // 0 = never
	Metadata  map[string]string `msgpack:"meta"`
	CreatedAt int64             `msgpack:"created"`
	// Overrides replace the policy's seat counts (and lease TTL) for this
	// license only; nil for none (overrides.go). Never changed in place.
	Overrides *Overrides `msgpack:"overrides,omitempty"`
}

// Lease is one checked-out seat. ExpiresAt is the deadline as last
// replicated (checkout or checkpoint); the leader may hold a later one in
// memory from heartbeats.
type Lease struct {
	ID        string `msgpack:"id"`
	LicenseID string `msgpack:"license"`
	Feature   string `msgpack:"feature"`
	Holder    Holder `msgpack:"holder"`
	RequestID string `msgpack:"req"`
	IssuedAt  int64  `msgpack:"issued"`
	ExpiresAt int64  `msgpack:"expires"`
	TTL       int64  `msgpack:"ttl"` // nanoseconds
	// BorrowedUntil is set on a borrowed lease: it is its ExpiresAt at
	// checkout (never past the license's expiry, from Checkout version 4)
	// and needs no heartbeats until then. omitempty keeps the
	// encoding (and the state hash) of every other lease unchanged.
	BorrowedUntil int64 `msgpack:"borrow,omitempty"`
}

// AuditRecord is one link of the hash chain.
type AuditRecord struct {
	Index     uint64  `msgpack:"i"`
	Time      int64   `msgpack:"t"`
	Type      string  `msgpack:"ty"`
	LicenseID string  `msgpack:"lic"`
	LeaseID   string  `msgpack:"lease"`
	Feature   string  `msgpack:"f"`
	Holder    *Holder `msgpack:"h"`
	Detail    string  `msgpack:"d"`
	PrevHash  string  `msgpack:"prev"` // hex
	Hash      string  `msgpack:"hash"` // hex
}

// SeatUsage is the live use of one feature; Total < 0 means not counted.
type SeatUsage struct {
	Total int
	InUse int
}

// Every command carries Time: Unix nanoseconds stamped by the leader before
// the command enters the log. Apply decides everything from it.

type CreateProduct struct {
	ID   string `msgpack:"id"`
	Name string `msgpack:"name"`
	Time int64  `msgpack:"time"`
}

type CreatePolicy struct {
	Policy Policy `msgpack:"policy"` // CreatedAt/UpdatedAt are set from Time
	Time   int64  `msgpack:"time"`
}

// UpdatePolicy changes only the non-nil fields.
type UpdatePolicy struct {
	ID             string     `msgpack:"id"`
	Name           *string    `msgpack:"name"`
	Features       *[]Feature `msgpack:"features"`
	LeaseTTL       *int64     `msgpack:"ttl"`
	SeatRule       *string    `msgpack:"rule"`
	MaxBorrowHours *int64     `msgpack:"borrow"`
	Time           int64      `msgpack:"time"`
	// Duration is added after v1: omitempty keeps older entries' bytes.
	Duration *int64 `msgpack:"duration,omitempty"`
}

// CreateLicense issues a license. Status is set to active and CreatedAt
// from Time; without ExpiresAt, a policy Duration sets it to Time+Duration.
type CreateLicense struct {
	License License `msgpack:"license"`
	Time    int64   `msgpack:"time"`
}

// SetLicenseStatus suspends, reinstates or revokes. Revoking ends every
// lease of the license (lease.revoked audit records).
type SetLicenseStatus struct {
	ID     string `msgpack:"id"`
	Status string `msgpack:"status"`
	Time   int64  `msgpack:"time"`
}

// Checkout takes a seat. LeaseID is chosen by the proposing node; a retry of
// RequestID answers the original lease and LeaseID is ignored.
type Checkout struct {
	LeaseID    string `msgpack:"lease"`
	LicenseKey string `msgpack:"key"`
	Feature    string `msgpack:"feature"`
	Holder     Holder `msgpack:"holder"`
	RequestID  string `msgpack:"req"`
	TTL        int64  `msgpack:"ttl"` // 0 = policy's lease TTL
	Time       int64  `msgpack:"time"`
	// BorrowHours > 0 borrows the seat for that many hours, up to the
	// policy's MaxBorrowHours.
	BorrowHours int64 `msgpack:"borrow,omitempty"`

	// version is the body version the entry was decoded with (fsm.go);
	// it is not part of the body.
	version byte
}

// Checkin releases a lease; a second checkin of the same lease succeeds.
type Checkin struct {
	LeaseID    string `msgpack:"lease"`
	LicenseKey string `msgpack:"key"`
	Time       int64  `msgpack:"time"`
}

// RevokeLease is the admin's force release.
type RevokeLease struct {
	LeaseID string `msgpack:"lease"`
	Time    int64  `msgpack:"time"`
}

// ExpireLeases ends leases whose deadline the leader has seen pass. Leases
// already gone are skipped silently.
type ExpireLeases struct {
	LeaseIDs []string `msgpack:"leases"`
	Time     int64    `msgpack:"time"`
}

// LeaseDeadline is one entry of a checkpoint.
type LeaseDeadline struct {
	LeaseID   string `msgpack:"lease"`
	ExpiresAt int64  `msgpack:"expires"`
}

// CheckpointLeases records the leader's in-memory deadlines so they survive a
// failover. A deadline earlier than the stored one is ignored (never earlier).
type CheckpointLeases struct {
	Leases []LeaseDeadline `msgpack:"leases"`
	Time   int64           `msgpack:"time"`
}

// Refusal is a domain answer "no": it is Apply's result, not an error of the
// log. Code is one of the Code* constants.
type Refusal struct {
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

// Result is what Apply returns for every command.
type Result struct {
	Refusal *Refusal
	Product *Product
	Policy  *Policy
	License *License
	Lease   *Lease
	// Retried is true when a checkout's RequestID was seen before and Lease
	// is the original lease.
	Retried bool
	// Ended lists the leases a command ended (revoke, expire, checkin), so
	// the leader can drop their deadlines.
	Ended []string
	// Key is the key a RetireKey changed; KeyEpoch the epoch after a
	// RotateKeys.
	Key      *SigningKey
	KeyEpoch uint64
}

// SigningKey is a node's Ed25519 public key, registered in the replicated
// state so that every node serves every key in its JWKS. The private key
// never leaves its node. The fields added after v1 are omitempty so that
// keys registered before them encode (and hash) exactly as they did.
type SigningKey struct {
	KID       string `msgpack:"kid"`
	PublicKey []byte `msgpack:"pub"`
	AddedAt   int64  `msgpack:"added"`
	NodeID    string `msgpack:"node,omitempty"`
	Epoch     uint64 `msgpack:"epoch,omitempty"`
	RetiredAt int64  `msgpack:"retired,omitempty"` // 0 = not retired
}

// Retired reports whether the key was retired (it is no longer served).
func (k SigningKey) Retired() bool { return k.RetiredAt != 0 }

// RegisterKey adds a signing key. Registering a known KID again changes
// nothing, except that it fills a NodeID the stored key lacks (keys
// registered before node ids were recorded).
type RegisterKey struct {
	Key  SigningKey `msgpack:"key"`
	Time int64      `msgpack:"time"`
}

// RotateKeys starts a new key epoch: every node that applies it makes a
// fresh private key for the new epoch, and a leader registers its key
// before signing with it. Keys of older epochs keep verifying until retired.
type RotateKeys struct {
	Time int64 `msgpack:"time"`
}

// RetireKey takes a key of an older epoch out of the served key set; tokens
// it signed stop verifying. A key of the current epoch is refused
// (key_in_use); retiring a retired key again is a no-op.
type RetireKey struct {
	KID  string `msgpack:"kid"`
	Time int64  `msgpack:"time"`
}

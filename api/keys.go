package api

import "time"

// Statuses of a signing key.
const (
	KeyStatusSigning   = "signing"   // the current leader signs new tokens with it
	KeyStatusVerifying = "verifying" // served in GET /v1/keys; tokens it signed verify
	KeyStatusRetired   = "retired"   // gone from GET /v1/keys; its tokens no longer verify
)

// SigningKey describes one token-signing key of GET /v1/signing-keys. The
// private key never leaves its node and is never part of an answer.
type SigningKey struct {
	KID       string     `json:"kid"`
	NodeID    string     `json:"node_id"`
	Epoch     uint64     `json:"epoch"`
	AddedAt   time.Time  `json:"added_at"`
	Status    string     `json:"status"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

// SigningKeyList answers GET /v1/signing-keys; Epoch is the current one.
type SigningKeyList struct {
	Epoch uint64       `json:"epoch"`
	Keys  []SigningKey `json:"keys"`
}

// RotateKeysResponse answers POST /v1/signing-keys/rotate: the new epoch
// and the key id the leader now signs with.
type RotateKeysResponse struct {
	Epoch uint64 `json:"epoch"`
	KID   string `json:"kid"`
}

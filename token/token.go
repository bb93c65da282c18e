package token

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Algorithm is the only JWS "alg" this package signs with or accepts.
const Algorithm = "EdDSA"

// Claims of a lease token (JWT claim names in the json tags).
type Claims struct {
	Issuer        string `json:"iss"` // cluster name
	Subject       string `json:"sub"` // lease id
	LicenseID     string `json:"lic"`
	Feature       string `json:"feat"`
	Machine       string `json:"mach,omitempty"`
	User          string `json:"usr,omitempty"`
	IssuedAt      int64  `json:"iat"` // unix seconds
	NotBefore     int64  `json:"nbf,omitempty"`
	ExpiresAt     int64  `json:"exp"` // unix seconds
	BorrowedUntil int64  `json:"borrow,omitempty"`
}

// header is the JOSE header this package writes. Field order is the wire
// order: {"alg":"EdDSA","typ":"JWT","kid":"..."}.
type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// b64 is the only base64 flavour of a token: URL alphabet, no padding, and
// strict, so non-zero trailing bits are refused.
var b64 = base64.RawURLEncoding.Strict()

// KeyIDOf returns the key id of pub: the first 16 characters of
// base64url(sha256(pub)), without padding.
func KeyIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:])[:16]
}

// Signer signs lease tokens with one Ed25519 private key. It is immutable
// and safe for concurrent use.
type Signer struct {
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
	kid    string
	header string // encoded header plus the trailing '.'
}

// NewSigner returns a Signer for priv. It panics if priv is not
// ed25519.PrivateKeySize bytes long: keys come from LoadOrCreateKey or
// ed25519.GenerateKey, so a bad one is a programming error.
func NewSigner(priv ed25519.PrivateKey) *Signer {
	if len(priv) != ed25519.PrivateKeySize {
		panic(fmt.Sprintf("token: NewSigner: private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize))
	}
	priv = append(ed25519.PrivateKey(nil), priv...)
	pub := priv.Public().(ed25519.PublicKey)
	kid := KeyIDOf(pub)
	h, err := json.Marshal(header{Alg: Algorithm, Typ: "JWT", Kid: kid})
	if err != nil { // a struct of three strings always marshals
		panic("token: NewSigner: " + err.Error())
	}
	return &Signer{priv: priv, pub: pub, kid: kid, header: b64.EncodeToString(h) + "."}
}

// KeyID returns the id of the signer's key, KeyIDOf(PublicKey()).
func (s *Signer) KeyID() string { return s.kid }

// PublicKey returns a copy of the signer's public key.
func (s *Signer) PublicKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), s.pub...)
}

// Sign returns c as a compact JWS signed with the signer's key. It refuses
// claims without an expiry: a token that never expires is not a lease.
func (s *Signer) Sign(c Claims) (string, error) {
	if c.ExpiresAt <= 0 {
		return "", errors.New("token: sign: claims have no exp")
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	signed := s.header + b64.EncodeToString(payload)
	sig := ed25519.Sign(s.priv, []byte(signed))
	return signed + "." + b64.EncodeToString(sig), nil
}

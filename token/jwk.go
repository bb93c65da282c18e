package token

import (
	"crypto/ed25519"
	"fmt"
)

// JWK is one public key of a JWKS (RFC 7517), in the OKP form of RFC 8037.
// api.JWK is identical, so the two convert with a plain type conversion.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Kid string `json:"kid"`
	X   string `json:"x"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
}

// PublicJWK returns pub as a signing JWK with its key id.
func PublicJWK(pub ed25519.PublicKey) JWK {
	return JWK{
		Kty: "OKP",
		Crv: "Ed25519",
		Kid: KeyIDOf(pub),
		X:   b64.EncodeToString(pub),
		Use: "sig",
		Alg: Algorithm,
	}
}

// KeySetFromJWKs builds a KeySet from a JWKS's keys. Keys that are not
// Ed25519 (kty OKP, crv Ed25519), or that declare another use or alg, are
// skipped, so a JWKS may carry other keys. A JWK without kid is filed under
// KeyIDOf(x). An x that does not decode to 32 bytes, or two different keys
// under one kid, is an error.
func KeySetFromJWKs(keys []JWK) (KeySet, error) {
	ks := make(KeySet, len(keys))
	for i, k := range keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		if (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != Algorithm) {
			continue
		}
		x, err := b64.DecodeString(k.X)
		if err != nil {
			return nil, fmt.Errorf("token: jwk %d (kid %q): x: %w", i, k.Kid, err)
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("token: jwk %d (kid %q): x is %d bytes, want %d", i, k.Kid, len(x), ed25519.PublicKeySize)
		}
		pub := ed25519.PublicKey(x)
		kid := k.Kid
		if kid == "" {
			kid = KeyIDOf(pub)
		}
		if old, dup := ks[kid]; dup && !old.Equal(pub) {
			return nil, fmt.Errorf("token: jwk %d: kid %q names two different keys", i, kid)
		}
		ks[kid] = pub
	}
	return ks, nil
}

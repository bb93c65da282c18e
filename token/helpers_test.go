package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

// now is the fixed clock of these tests.
var now = time.Unix(1_700_000_000, 0)

// testKey is a deterministic key so failures reproduce byte for byte.
func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s)
}

func testClaims() Claims {
	return Claims{
		Issuer:    "tally-test",
		Subject:   "lease-0001",
		LicenseID: "lic-42",
		Feature:   "cad.pro",
		Machine:   "fp:ab12",
		User:      "ada",
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(time.Minute).Unix(),
	}
}

func keySetOf(pubs ...ed25519.PublicKey) KeySet {
	ks := KeySet{}
	for _, p := range pubs {
		ks[KeyIDOf(p)] = p
	}
	return ks
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// rawToken signs arbitrary header and payload bytes with priv, so tests can
// build tokens Sign would never produce.
func rawToken(priv ed25519.PrivateKey, header, payload string) string {
	signed := enc(header) + "." + enc(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(signed)))
}

func mustSign(t testing.TB, s *Signer, c Claims) string {
	t.Helper()
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

var sentinels = []error{ErrMalformed, ErrBadSignature, ErrUnknownKey, ErrExpired, ErrNotYetValid, ErrBadAlgorithm}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

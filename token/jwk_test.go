package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
)

func TestPublicJWK(t *testing.T) {
	pub := NewSigner(testKey(0)).PublicKey()
	b, err := json.Marshal(PublicJWK(pub))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kty":"OKP","crv":"Ed25519","kid":"` + KeyIDOf(pub) + `","x":"` +
		base64.RawURLEncoding.EncodeToString(pub) + `","use":"sig","alg":"EdDSA"}`
	if string(b) != want {
		t.Fatalf("JWK = %s\nwant  %s", b, want)
	}
}

func TestJWKRoundTrip(t *testing.T) {
	s1, s2 := NewSigner(testKey(1)), NewSigner(testKey(2))
	jwks := []JWK{PublicJWK(s1.PublicKey()), PublicJWK(s2.PublicKey())}

	// Through JSON, as a client fetching GET /v1/keys would.
	b, _ := json.Marshal(map[string][]JWK{"keys": jwks})
	var doc struct{ Keys []JWK }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	ks, err := KeySetFromJWKs(doc.Keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || !ks[s1.KeyID()].Equal(s1.PublicKey()) || !ks[s2.KeyID()].Equal(s2.PublicKey()) {
		t.Fatalf("key set = %v", ks)
	}
	for _, s := range []*Signer{s1, s2} {
		if _, err := Verify(mustSign(t, s, testClaims()), ks, now); err != nil {
			t.Fatalf("token of %s: %v", s.KeyID(), err)
		}
	}
}

func TestKeySetFromJWKsSkipsForeignKeys(t *testing.T) {
	pub := NewSigner(testKey(1)).PublicKey()
	x := base64.RawURLEncoding.EncodeToString(pub)
	ks, err := KeySetFromJWKs([]JWK{
		{Kty: "RSA", Kid: "rsa", X: "AQAB"},
		{Kty: "OKP", Crv: "X25519", Kid: "ecdh", X: x},
		{Kty: "EC", Crv: "P-256", Kid: "ec", X: "AAAA"},
		{Kty: "OKP", Crv: "Ed25519", Kid: "enc", X: x, Use: "enc"},
		{Kty: "OKP", Crv: "Ed25519", Kid: "other-alg", X: x, Alg: "ES256"},
		{Kty: "OKP", Crv: "Ed25519", X: x}, // no kid: derived
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 1 || !ks[KeyIDOf(pub)].Equal(pub) {
		t.Fatalf("key set = %v, want only %s", ks, KeyIDOf(pub))
	}
}

func TestKeySetFromJWKsErrors(t *testing.T) {
	pub := NewSigner(testKey(1)).PublicKey()
	other := NewSigner(testKey(2)).PublicKey()
	x := base64.RawURLEncoding.EncodeToString
	for name, keys := range map[string][]JWK{
		"short x":     {{Kty: "OKP", Crv: "Ed25519", Kid: "a", X: x(pub[:31])}},
		"long x":      {{Kty: "OKP", Crv: "Ed25519", Kid: "a", X: x(append(ed25519.PublicKey{0}, pub...))}},
		"empty x":     {{Kty: "OKP", Crv: "Ed25519", Kid: "a"}},
		"padded x":    {{Kty: "OKP", Crv: "Ed25519", Kid: "a", X: base64.URLEncoding.EncodeToString(pub)}},
		"std base64":  {{Kty: "OKP", Crv: "Ed25519", Kid: "a", X: "!!!" + x(pub)[3:]}},
		"kid clashes": {{Kty: "OKP", Crv: "Ed25519", Kid: "a", X: x(pub)}, {Kty: "OKP", Crv: "Ed25519", Kid: "a", X: x(other)}},
	} {
		t.Run(name, func(t *testing.T) {
			if ks, err := KeySetFromJWKs(keys); err == nil {
				t.Fatalf("accepted, key set = %v", ks)
			}
		})
	}
	// The same key listed twice is harmless.
	j := PublicJWK(pub)
	if _, err := KeySetFromJWKs([]JWK{j, j}); err != nil {
		t.Fatalf("duplicate identical key: %v", err)
	}
}

package token

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseJWKS(t *testing.T) {
	s1, s2 := NewSigner(testKey(1)), NewSigner(testKey(2))
	doc, _ := json.Marshal(map[string][]JWK{"keys": {PublicJWK(s1.PublicKey()), PublicJWK(s2.PublicKey())}})
	ks, err := ParseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || !ks[s1.KeyID()].Equal(s1.PublicKey()) || !ks[s2.KeyID()].Equal(s2.PublicKey()) {
		t.Fatalf("key set = %v", ks)
	}
	if _, err := Verify(mustSign(t, s2, testClaims()), ks, now); err != nil {
		t.Fatal(err)
	}
}

func TestParseJWKSErrors(t *testing.T) {
	good := PublicJWK(NewSigner(testKey(1)).PublicKey())
	x := good.X
	for name, doc := range map[string]string{
		"empty":         ``,
		"not json":      `keys`,
		"array":         `[{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}]`,
		"null":          `null`,
		"no keys":       `{}`,
		"empty keys":    `{"keys":[]}`,
		"only rsa keys": `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`,
		"short x":       `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]}`,
		"keys a string": `{"keys":"` + x + `"}`,
		"trailing junk": `{"keys":[]}{`,
		"too big":       `{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSLen) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if ks, err := ParseJWKS([]byte(doc)); err == nil {
				t.Fatalf("accepted, key set %v", ks)
			}
		})
	}
}

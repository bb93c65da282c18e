package token

import (
	"strings"
	"testing"
)

// FuzzVerify checks that Verify never panics, that every error is one of the
// sentinels, and that nothing but the one genuine token is ever accepted:
// strict base64 and Ed25519's strong unforgeability leave a signed token
// exactly one spelling.
func FuzzVerify(f *testing.F) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	valid := mustSign(f, s, testClaims())
	p := parts(valid)

	expired := testClaims()
	expired.ExpiresAt = now.Unix() - 1
	for _, seed := range []string{
		valid,
		mustSign(f, s, expired),
		"", ".", "..", "...",
		p[0] + "." + p[1] + ".",
		enc(`{"alg":"none"}`) + "." + p[1] + ".",
		enc(`{"alg":"EdDSA","kid":"`+s.KeyID()+`"}`) + "." + p[1] + "." + p[2],
		strings.ToUpper(valid),
		valid + "\n",
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Verify(tok, ks, now)
		if err != nil {
			if c != nil {
				t.Fatalf("claims returned with error %v", err)
			}
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if tok != valid {
			t.Fatalf("accepted a token that was never signed: %q", tok)
		}
		if *c != testClaims() {
			t.Fatalf("claims = %+v", *c)
		}
	})
}

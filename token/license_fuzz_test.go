package token

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// licenseSentinels are the errors VerifyLicense may wrap.
var licenseSentinels = append([]error{ErrWrongMachine}, sentinels...)

// FuzzVerifyLicense checks that VerifyLicense never panics, that every error
// wraps a sentinel, and that whatever it accepts carries the one genuine
// token line: comments and blank lines may vary, the signed line may not,
// and a locked file passes only on its machine.
func FuzzVerifyLicense(f *testing.F) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	want := testLicense()
	jws := mustSignLicense(f, s, want)
	p := parts(jws)
	floating := want
	floating.Machine = ""
	floatingJWS := mustSignLicense(f, s, floating)
	// genuine maps each signed token line to its claims.
	genuine := map[string]LicenseClaims{jws: want, floatingJWS: floating}

	for _, seed := range []string{
		jws,
		EncodeLicenseFile(jws, want),
		strings.ReplaceAll(EncodeLicenseFile(jws, want), "\n", "\r\n"),
		mustSign(f, s, testClaims()), // a lease token
		floatingJWS,
		"", "#", "\n", "# only a comment\n", "..", jws + "\n" + jws,
		p[0] + "." + p[1] + ".",
		enc(`{"alg":"none","typ":"tally-license+jwt"}`) + "." + p[1] + ".",
		strings.ToUpper(jws),
		" \t" + jws + "\r\n# trailing comment",
	} {
		f.Add(seed, "fp-this")
	}
	f.Add(jws, "fp-other")
	f.Add(jws, "")

	f.Fuzz(func(t *testing.T, file, machine string) {
		c, err := VerifyLicense(file, ks, now, machine)
		if err != nil {
			if c != nil {
				t.Fatalf("claims returned with error %v", err)
			}
			for _, s := range licenseSentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
		line, perr := ParseLicenseFile(file)
		signed, ok := genuine[line]
		if perr != nil || !ok {
			t.Fatalf("accepted a file whose token line %q was never signed", line)
		}
		if signed.Machine != "" && machine != signed.Machine {
			t.Fatalf("accepted on machine %q a file locked to %q", machine, signed.Machine)
		}
		if !reflect.DeepEqual(*c, signed) {
			t.Fatalf("claims = %+v, want %+v", *c, signed)
		}
	})
}

// FuzzParseJWKS checks that ParseJWKS never panics and that every key it
// returns is a usable Ed25519 key that survives a trip through PublicJWK.
func FuzzParseJWKS(f *testing.F) {
	one := PublicJWK(NewSigner(testKey(1)).PublicKey())
	two := PublicJWK(NewSigner(testKey(2)).PublicKey())
	for _, keys := range [][]JWK{{one}, {one, two}, {one, one}} {
		doc, _ := json.Marshal(map[string][]JWK{"keys": keys})
		f.Add(doc)
	}
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"keys":null}`, `{"keys":[{}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + one.X + `"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + one.X + `"},{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + two.X + `"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + one.X + `=="}]}`,
		`{"keys":[{"kty":"RSA","n":"AQAB"}]}`,
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, doc []byte) {
		ks, err := ParseJWKS(doc)
		if err != nil {
			if ks != nil {
				t.Fatalf("key set returned with error %v", err)
			}
			return
		}
		if len(ks) == 0 {
			t.Fatal("empty key set accepted")
		}
		var jwks []JWK
		for kid, pub := range ks {
			if len(pub) != 32 {
				t.Fatalf("key %q is %d bytes", kid, len(pub))
			}
			j := PublicJWK(pub)
			j.Kid = kid
			jwks = append(jwks, j)
		}
		again, err := KeySetFromJWKs(jwks)
		if err != nil || !reflect.DeepEqual(again, ks) {
			t.Fatalf("round trip: %v, %v; want %v", again, err, ks)
		}
	})
}

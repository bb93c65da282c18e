package token

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	s := NewSigner(testKey(1))
	want := testClaims()
	want.NotBefore = now.Unix()
	want.BorrowedUntil = now.Add(72 * time.Hour).Unix()
	tok := mustSign(t, s, want)

	got, err := Verify(tok, keySetOf(s.PublicKey()), now)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if *got != want {
		t.Fatalf("claims = %+v, want %+v", *got, want)
	}
}

func TestSignerKeyID(t *testing.T) {
	priv := testKey(1)
	s := NewSigner(priv)
	pub := priv.Public().(ed25519.PublicKey)
	if !s.PublicKey().Equal(pub) {
		t.Fatal("PublicKey differs from the private key's")
	}
	sum := sha256.Sum256(pub)
	want := base64.RawURLEncoding.EncodeToString(sum[:])[:16]
	if s.KeyID() != want || KeyIDOf(pub) != want {
		t.Fatalf("KeyID = %q, KeyIDOf = %q, want %q", s.KeyID(), KeyIDOf(pub), want)
	}
	if KeyIDOf(NewSigner(testKey(2)).PublicKey()) == want {
		t.Fatal("two keys share a key id")
	}
}

// TestGolden pins the wire format: header bytes and field order, claim
// names, and the signature (Ed25519 is deterministic). Other SDKs parse this.
func TestGolden(t *testing.T) {
	s := NewSigner(testKey(0))
	c := Claims{Issuer: "prod", Subject: "L1", LicenseID: "lic", Feature: "f",
		IssuedAt: 1_700_000_000, ExpiresAt: 1_700_000_060}
	tok := mustSign(t, s, c)

	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if want := `{"alg":"EdDSA","typ":"JWT","kid":"` + s.KeyID() + `"}`; string(h) != want {
		t.Fatalf("header = %s, want %s", h, want)
	}
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if want := `{"iss":"prod","sub":"L1","lic":"lic","feat":"f","iat":1700000000,"exp":1700000060}`; string(p) != want {
		t.Fatalf("payload = %s, want %s", p, want)
	}
	if tok != goldenToken {
		t.Fatalf("token =\n%s\nwant\n%s", tok, goldenToken)
	}
}

// goldenToken was also verified with Python's cryptography package
// (Ed25519PublicKey.verify), independent of this code.
const goldenToken = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6IlZrZGFwMVJqUjB3Q2hkOWQifQ." +
	"eyJpc3MiOiJwcm9kIiwic3ViIjoiTDEiLCJsaWMiOiJsaWMiLCJmZWF0IjoiZiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwMDYwfQ." +
	"5LfKe8ZJmhRFD4BWPCVLHvUCPlzcMH3azBi1TsUlAKm0znQZaOqM0cXrGt4I0O0DQ2Te8zgZdI7C693_2IK7Ag"

func TestSignRefusesNoExpiry(t *testing.T) {
	c := testClaims()
	c.ExpiresAt = 0
	if _, err := NewSigner(testKey(1)).Sign(c); err == nil {
		t.Fatal("Sign accepted claims without exp")
	}
}

func TestNewSignerBadKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewSigner accepted a short key")
		}
	}()
	NewSigner(ed25519.PrivateKey(make([]byte, 10)))
}

func TestTamperedPayload(t *testing.T) {
	s := NewSigner(testKey(1))
	tok := mustSign(t, s, testClaims())
	parts := strings.Split(tok, ".")

	c := testClaims()
	c.ExpiresAt += 3600 // stretch the lease
	p, _ := json.Marshal(c)
	forged := parts[0] + "." + enc(string(p)) + "." + parts[2]

	_, err := Verify(forged, keySetOf(s.PublicKey()), now)
	wantErr(t, err, ErrBadSignature)
}

func TestTamperedHeader(t *testing.T) {
	s := NewSigner(testKey(1))
	tok := mustSign(t, s, testClaims())
	parts := strings.Split(tok, ".")
	h := enc(`{"alg":"EdDSA","typ":"JWT","kid":"` + s.KeyID() + `","x5u":"https://evil"}`)

	_, err := Verify(h+"."+parts[1]+"."+parts[2], keySetOf(s.PublicKey()), now)
	wantErr(t, err, ErrBadSignature)
}

func TestTamperedSignature(t *testing.T) {
	s := NewSigner(testKey(1))
	tok := []byte(mustSign(t, s, testClaims()))
	i := len(tok) - 20 // well inside the signature, clear of the padding bits
	if tok[i] == 'A' {
		tok[i] = 'B'
	} else {
		tok[i] = 'A'
	}
	_, err := Verify(string(tok), keySetOf(s.PublicKey()), now)
	wantErr(t, err, ErrBadSignature)
}

// A key set mapping the token's kid to another key: the signature must fail.
func TestWrongKeyUnderKid(t *testing.T) {
	s := NewSigner(testKey(1))
	tok := mustSign(t, s, testClaims())
	other := NewSigner(testKey(2)).PublicKey()

	_, err := Verify(tok, KeySet{s.KeyID(): other}, now)
	wantErr(t, err, ErrBadSignature)
}

func TestAlgNone(t *testing.T) {
	s := NewSigner(testKey(1))
	p, _ := json.Marshal(testClaims())
	hdr := `{"alg":"none","typ":"JWT","kid":"` + s.KeyID() + `"}`
	for _, sig := range []string{"", parts(mustSign(t, s, testClaims()))[2]} {
		tok := enc(hdr) + "." + enc(string(p)) + "." + sig
		_, err := Verify(tok, keySetOf(s.PublicKey()), now)
		wantErr(t, err, ErrBadAlgorithm)
	}
}

// The classic key confusion: HS256 keyed with the public key bytes, which
// a verifier that trusts the header's alg would accept.
func TestHS256WithPublicKeyAsSecret(t *testing.T) {
	s := NewSigner(testKey(1))
	p, _ := json.Marshal(testClaims())
	signed := enc(`{"alg":"HS256","typ":"JWT","kid":"`+s.KeyID()+`"}`) + "." + enc(string(p))
	mac := hmac.New(sha256.New, s.PublicKey())
	mac.Write([]byte(signed))
	tok := signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	_, err := Verify(tok, keySetOf(s.PublicKey()), now)
	wantErr(t, err, ErrBadAlgorithm)
}

// Headers genuinely signed with the right key but naming another alg are
// still refused: the header is never trusted to pick the algorithm.
func TestAlgMustBeExactlyEdDSA(t *testing.T) {
	priv := testKey(1)
	kid := NewSigner(priv).KeyID()
	p, _ := json.Marshal(testClaims())
	for _, alg := range []string{
		`"none"`, `"None"`, `"HS256"`, `"RS256"`, `"ES256"`, `"eddsa"`, `"EDDSA"`,
		`"Ed25519"`, `"EdDSA "`, `""`, `null`, `123`, `["EdDSA"]`,
	} {
		tok := rawToken(priv, `{"alg":`+alg+`,"typ":"JWT","kid":"`+kid+`"}`, string(p))
		_, err := Verify(tok, keySetOf(priv.Public().(ed25519.PublicKey)), now)
		if err == nil || !strings.Contains(err.Error(), "algorithm") {
			t.Errorf("alg %s: err = %v, want ErrBadAlgorithm", alg, err)
		}
		wantErr(t, err, ErrBadAlgorithm)
	}
	for _, hdr := range []string{
		`{"typ":"JWT","kid":"` + kid + `"}`,                // no alg
		`{"ALG":"EdDSA","typ":"JWT","kid":"` + kid + `"}`,  // json would fold case
		`{"Alg":"EdDSA","alg":"none","kid":"` + kid + `"}`, // ditto
	} {
		_, err := Verify(rawToken(priv, hdr, string(p)), keySetOf(priv.Public().(ed25519.PublicKey)), now)
		wantErr(t, err, ErrBadAlgorithm)
	}
}

func TestUnknownKey(t *testing.T) {
	s := NewSigner(testKey(1))
	tok := mustSign(t, s, testClaims())
	for name, ks := range map[string]KeySet{
		"nil":        nil,
		"empty":      {},
		"other key":  keySetOf(NewSigner(testKey(2)).PublicKey()),
		"short key":  {s.KeyID(): s.PublicKey()[:10]}, // ed25519.Verify would panic
		"nil pubkey": {s.KeyID(): nil},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(tok, ks, now)
			wantErr(t, err, ErrUnknownKey)
		})
	}
	t.Run("no kid", func(t *testing.T) {
		p, _ := json.Marshal(testClaims())
		_, err := Verify(rawToken(testKey(1), `{"alg":"EdDSA","typ":"JWT"}`, string(p)), keySetOf(s.PublicKey()), now)
		wantErr(t, err, ErrUnknownKey)
	})
}

func TestExpiry(t *testing.T) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	c := testClaims()
	c.ExpiresAt = now.Unix()
	tok := mustSign(t, s, c)

	for _, tc := range []struct {
		name string
		at   time.Time
		want error
	}{
		{"a second before", now.Add(-time.Second), nil},
		{"half a second before", now.Add(-500 * time.Millisecond), nil},
		{"exactly at exp", now, ErrExpired},
		{"a nanosecond after", now.Add(time.Nanosecond), ErrExpired},
		{"a day after", now.Add(24 * time.Hour), ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Verify(tok, ks, tc.at)
			if tc.want == nil {
				if err != nil || got == nil {
					t.Fatalf("Verify = %v, %v; want claims", got, err)
				}
				return
			}
			wantErr(t, err, tc.want)
			if got != nil {
				t.Fatal("claims returned with an error")
			}
		})
	}
}

func TestNotBefore(t *testing.T) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	c := testClaims()
	c.NotBefore = now.Unix()
	tok := mustSign(t, s, c)

	_, err := Verify(tok, ks, now.Add(-time.Second))
	wantErr(t, err, ErrNotYetValid)
	_, err = Verify(tok, ks, now.Add(-time.Nanosecond))
	wantErr(t, err, ErrNotYetValid)
	if _, err := Verify(tok, ks, now); err != nil {
		t.Fatalf("at nbf: %v", err)
	}
}

func TestMissingExpIsExpired(t *testing.T) {
	priv := testKey(1)
	tok := rawToken(priv, `{"alg":"EdDSA","typ":"JWT","kid":"`+KeyIDOf(priv.Public().(ed25519.PublicKey))+`"}`,
		`{"iss":"x","sub":"L","lic":"l","feat":"f","iat":1}`)
	_, err := Verify(tok, keySetOf(priv.Public().(ed25519.PublicKey)), now)
	wantErr(t, err, ErrExpired)
}

// Leeway is a package variable; this test is not parallel for that reason.
func TestLeeway(t *testing.T) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	c := testClaims()
	c.ExpiresAt = now.Unix()
	c.NotBefore = now.Unix()
	tok := mustSign(t, s, c)

	old := Leeway
	t.Cleanup(func() { Leeway = old })
	Leeway = 5 * time.Second
	for _, at := range []time.Time{now.Add(-5 * time.Second), now, now.Add(4 * time.Second)} {
		if _, err := Verify(tok, ks, at); err != nil {
			t.Fatalf("at now%+v with leeway: %v", at.Sub(now), err)
		}
	}
	_, err := Verify(tok, ks, now.Add(5*time.Second))
	wantErr(t, err, ErrExpired)
	_, err = Verify(tok, ks, now.Add(-6*time.Second))
	wantErr(t, err, ErrNotYetValid)
}

func TestMalformed(t *testing.T) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	good := mustSign(t, s, testClaims())
	p := parts(good)
	kid := s.KeyID()
	hdr := `{"alg":"EdDSA","typ":"JWT","kid":"` + kid + `"}`
	priv := testKey(1)

	for name, tok := range map[string]string{
		"empty":                "",
		"one part":             p[0],
		"two parts":            p[0] + "." + p[1],
		"four parts":           good + "." + p[2],
		"only dots":            "..",
		"trailing dot":         good + ".",
		"padding":              p[0] + "." + p[1] + "." + p[2] + "==",
		"std alphabet":         strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+/",
		"newline in payload":   p[0] + "." + p[1][:5] + "\n" + p[1][5:] + "." + p[2],
		"CR in signature":      p[0] + "." + p[1] + "." + p[2][:5] + "\r" + p[2][5:],
		"space":                p[0] + " ." + p[1] + "." + p[2],
		"bad base64 length":    p[0] + "." + p[1] + "x." + p[2] + "x",
		"non-zero pad bits":    p[0] + "." + p[1] + "." + p[2][:len(p[2])-1] + "B",
		"non-ascii":            p[0] + "." + p[1] + "é." + p[2],
		"header not json":      enc("not json") + "." + p[1] + "." + p[2],
		"header json array":    enc(`["EdDSA"]`) + "." + p[1] + "." + p[2],
		"header json null":     enc(`null`) + "." + p[1] + "." + p[2],
		"header truncated":     enc(hdr[:len(hdr)-1]) + "." + p[1] + "." + p[2],
		"kid not a string":     rawToken(priv, `{"alg":"EdDSA","typ":"JWT","kid":7}`, `{"exp":9999999999}`),
		"crit header":          rawToken(priv, `{"alg":"EdDSA","typ":"JWT","kid":"`+kid+`","crit":["exp"]}`, `{"exp":9999999999}`),
		"signed payload junk":  rawToken(priv, hdr, `not json`),
		"signed payload null":  rawToken(priv, hdr, `null`),
		"signed payload array": rawToken(priv, hdr, `[1,2]`),
		"signed exp string":    rawToken(priv, hdr, `{"exp":"9999999999"}`),
		"signed exp float":     rawToken(priv, hdr, `{"exp":1.5e9}`),
		"too long":             p[0] + "." + strings.Repeat("A", maxTokenLen) + "." + p[2],
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Verify(tok, ks, now)
			wantErr(t, err, ErrMalformed)
			if c != nil {
				t.Fatal("claims returned with an error")
			}
		})
	}
}

func parts(tok string) []string { return strings.Split(tok, ".") }

func TestConcurrentSignVerify(t *testing.T) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	done := make(chan error, 8)
	for i := range 8 {
		go func() {
			c := testClaims()
			c.Subject = "lease-" + string(rune('a'+i))
			tok, err := s.Sign(c)
			if err == nil {
				var got *Claims
				got, err = Verify(tok, ks, now)
				if err == nil && got.Subject != c.Subject {
					err = ErrMalformed
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	s := NewSigner(testKey(1))
	c := testClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	tok := mustSign(b, s, testClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(tok, ks, now); err != nil {
			b.Fatal(err)
		}
	}
}

func TestKeyIDOfToken(t *testing.T) {
	s := NewSigner(testKey(7))
	tok, err := s.Sign(Claims{Subject: "l", ExpiresAt: 2e9})
	if err != nil {
		t.Fatal(err)
	}
	if kid, err := KeyIDOfToken(tok); err != nil || kid != s.KeyID() {
		t.Fatalf("KeyIDOfToken = %q, %v; want %q", kid, err, s.KeyID())
	}
	for _, bad := range []string{"", "nodot", "!!!.x.y", b64.EncodeToString([]byte(`{"alg":"EdDSA"}`)) + ".x.y"} {
		if _, err := KeyIDOfToken(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("KeyIDOfToken(%q): %v, want ErrMalformed", bad, err)
		}
	}
}

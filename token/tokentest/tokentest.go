// Package tokentest builds signed lease tokens, license files and forgeries
// of them for tests. Its Cases table is shared by the SDK's offline check
// and by `tally verify`, so both refuse the same attacks for the same
// reasons.
package tokentest

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/tallyhq/tally/token"
)

// Machines of the cases: the one checking, and another.
const (
	ThisMachine  = "fp-this-machine"
	OtherMachine = "fp-other-machine"
)

// Case is one input to an offline check and its expected outcome.
type Case struct {
	Name string
	// Input is a lease token or the content of a license file.
	Input string
	// File says Input is a license file (tests pass it as a path).
	File bool
	// Floor is the trusted-time floor to start from; zero means none.
	Floor time.Time
	// Want is the sentinel of the refusal (token.ErrExpired, ...); nil
	// means the input is accepted.
	Want error
}

// Fixture is a cluster key, its JWKS, and the cases signed with it. Every
// case checks on ThisMachine, at Now, with the default clock tolerance.
type Fixture struct {
	Now    time.Time
	Signer *token.Signer
	Keys   token.KeySet
	JWKS   []byte
	Cases  []Case
}

// Key returns a deterministic Ed25519 key for seed.
func Key(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s)
}

// NewFixture signs the cases for a check at now. Times are hours apart, so
// a check run a little after now (a CLI test on the wall clock) sees the
// same outcome.
func NewFixture(now time.Time) *Fixture {
	s := token.NewSigner(Key(1))
	other := token.NewSigner(Key(2))
	jwks, _ := json.Marshal(map[string][]token.JWK{"keys": {token.PublicJWK(s.PublicKey())}})
	f := &Fixture{Now: now, Signer: s, Keys: token.KeySet{s.KeyID(): s.PublicKey()}, JWKS: jwks}

	h := time.Hour
	lease := LeaseClaims(now)
	leaseTok := must(s.Sign(lease))
	license := LicenseClaims(now, ThisMachine)
	licenseJWS := must(s.SignLicense(license))
	file := token.EncodeLicenseFile(licenseJWS, license)
	floating := LicenseClaims(now, "")

	expiredLease := lease
	expiredLease.IssuedAt, expiredLease.ExpiresAt = now.Add(-2*h).Unix(), now.Add(-h).Unix()
	expiredLicense := license
	expiredLicense.IssuedAt, expiredLicense.NotBefore, expiredLicense.ExpiresAt = now.Add(-48*h).Unix(), now.Add(-48*h).Unix(), now.Add(-h).Unix()
	futureLicense := license
	futureLicense.NotBefore = now.Add(h).Unix()
	otherMachine := LicenseClaims(now, OtherMachine)
	leaseOther := lease
	leaseOther.Machine = OtherMachine

	p := strings.Split(leaseTok, ".")
	stretched := lease
	stretched.ExpiresAt = now.Add(1000 * h).Unix()
	lp := strings.Split(licenseJWS, ".")
	moreSeats := license
	moreSeats.Features = []token.LicenseFeature{{Name: "cad", Seats: intp(500)}}
	payload, _ := json.Marshal(lease)

	f.Cases = []Case{
		{Name: "valid lease token", Input: leaseTok},
		{Name: "valid license file locked to this machine", Input: file, File: true},
		{Name: "valid floating license file, bare token", Input: must(s.SignLicense(floating)) + "\n", File: true},
		{Name: "clock behind the floor within tolerance", Input: leaseTok, Floor: now.Add(time.Minute)},
		{Name: "tampered payload", Input: p[0] + "." + enc(mustJSON(stretched)) + "." + p[2], Want: token.ErrBadSignature},
		{Name: "tampered license payload", Input: token.EncodeLicenseFile(lp[0]+"."+enc(mustJSON(moreSeats))+"."+lp[2], moreSeats), File: true, Want: token.ErrBadSignature},
		{Name: "tampered header", Input: enc(`{"alg":"EdDSA","typ":"JWT","kid":"`+s.KeyID()+`","jku":"https://evil.example"}`) + "." + p[1] + "." + p[2], Want: token.ErrBadSignature},
		{Name: "alg none", Input: enc(`{"alg":"none","typ":"JWT","kid":"`+s.KeyID()+`"}`) + "." + p[1] + ".", Want: token.ErrBadAlgorithm},
		{Name: "HS256 keyed with the public key", Input: hs256(s, string(payload)), Want: token.ErrBadAlgorithm},
		{Name: "unknown kid", Input: must(other.Sign(lease)), Want: token.ErrUnknownKey},
		{Name: "license file of an unknown kid", Input: token.EncodeLicenseFile(must(other.SignLicense(license)), license), File: true, Want: token.ErrUnknownKey},
		{Name: "expired lease token", Input: must(s.Sign(expiredLease)), Want: token.ErrExpired},
		{Name: "expired license file", Input: token.EncodeLicenseFile(must(s.SignLicense(expiredLicense)), expiredLicense), File: true, Want: token.ErrExpired},
		{Name: "not-yet-valid license file", Input: token.EncodeLicenseFile(must(s.SignLicense(futureLicense)), futureLicense), File: true, Want: token.ErrNotYetValid},
		{Name: "another machine's license file", Input: token.EncodeLicenseFile(must(s.SignLicense(otherMachine)), otherMachine), File: true, Want: token.ErrWrongMachine},
		{Name: "another machine's lease token", Input: must(s.Sign(leaseOther)), Want: token.ErrWrongMachine},
		{Name: "rolled-back clock", Input: leaseTok, Floor: now.Add(h), Want: token.ErrClockRolledBack},
		{Name: "rolled-back clock, license file", Input: file, File: true, Floor: now.Add(30 * 24 * h), Want: token.ErrClockRolledBack},
		{Name: "malformed", Input: enc("not json") + "." + p[1] + "." + p[2], Want: token.ErrMalformed},
		{Name: "license file with two token lines", Input: file + licenseJWS + "\n", File: true, Want: token.ErrMalformed},
	}
	return f
}

// LeaseClaims are lease-token claims issued a minute before now, valid for
// an hour, held on ThisMachine.
func LeaseClaims(now time.Time) token.Claims {
	return token.Claims{
		Issuer: "tally-test", Subject: "lse_1", LicenseID: "lic_1", Feature: "cad",
		Machine: ThisMachine, User: "ana",
		IssuedAt: now.Add(-time.Minute).Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
	}
}

// LicenseClaims are license-file claims issued a minute before now, valid
// for 30 days, locked to machine ("" for none).
func LicenseClaims(now time.Time, machine string) token.LicenseClaims {
	return token.LicenseClaims{
		Issuer: "tally-test", Subject: "lic_1", ProductID: "prd_1", Customer: "Acme Corp", PolicyID: "pol_1",
		Features: []token.LicenseFeature{{Name: "cad", Seats: intp(3)}, {Name: "viewer"}},
		Machine:  machine,
		IssuedAt: now.Add(-time.Minute).Unix(), NotBefore: now.Add(-time.Minute).Unix(),
		ExpiresAt: now.Add(30 * 24 * time.Hour).Unix(),
	}
}

// hs256 is the classic key confusion: HS256 keyed with the public key.
func hs256(s *token.Signer, payload string) string {
	signed := enc(`{"alg":"HS256","typ":"JWT","kid":"`+s.KeyID()+`"}`) + "." + enc(payload)
	mac := hmac.New(sha256.New, s.PublicKey())
	mac.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func intp(n int) *int { return &n }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// must panics on a signing error: the fixture's claims are always signable.
func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

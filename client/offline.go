package client

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/token"
)

// Kinds of what an OfflineVerifier accepts.
const (
	KindLeaseToken  = "lease_token"
	KindLicenseFile = "license_file"
)

// OfflineVerifier checks lease tokens and license files on this machine
// without asking the cluster: the signature against saved public keys, the
// validity window, the machine lock, and that the clock has not been
// turned back. It is what `tally verify` runs.
type OfflineVerifier struct {
	// Keys are the cluster's public keys (GET /v1/keys, or LoadKeySet).
	Keys token.KeySet
	// Machine is this machine's fingerprint; "" means MachineFingerprint().
	// A license file or lease token that names a machine (mach) passes
	// only here. Lease tokens name the api.Holder.Machine given at checkout,
	// so an app that checks seats out under another machine name sets it
	// here.
	Machine string
	// Floor, when set, refuses a clock earlier than the latest trusted
	// time (ErrClockRolledBack), and every accepted token raises it to the
	// token's iat.
	Floor *token.TimeFloor
	// Tolerance of the floor check; 0 means token.DefaultClockTolerance.
	Tolerance time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// OfflineResult is what an accepted token or file says. Exactly one of
// Lease and License is set, as Kind tells.
type OfflineResult struct {
	Kind    string               `json:"kind"`
	Lease   *token.Claims        `json:"lease,omitempty"`
	License *token.LicenseClaims `json:"license,omitempty"`
}

// OfflineError is a refusal. Reason is a short snake_case name for it
// (see OfflineReason); errors.Is matches the token sentinels it wraps.
type OfflineError struct {
	Reason string
	Err    error
}

func (e *OfflineError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *OfflineError) Unwrap() error { return e.Err }

// OfflineReason names why err refused a token: clock_rolled_back,
// wrong_machine, bad_signature, unknown_kid, bad_algorithm, expired,
// not_yet_valid, malformed (a license file given as a lease token is one),
// or "error" for anything else (an unreadable time-floor file).
func OfflineReason(err error) string {
	for _, r := range []struct {
		sentinel error
		reason   string
	}{
		{token.ErrClockRolledBack, "clock_rolled_back"},
		{token.ErrWrongMachine, "wrong_machine"},
		{token.ErrBadSignature, "bad_signature"},
		{token.ErrUnknownKey, "unknown_kid"},
		{token.ErrBadAlgorithm, "bad_algorithm"},
		{token.ErrExpired, "expired"},
		{token.ErrNotYetValid, "not_yet_valid"},
		{token.ErrMalformed, "malformed"},
	} {
		if errors.Is(err, r.sentinel) {
			return r.reason
		}
	}
	return "error"
}

// Verify checks s, a lease token (surrounding whitespace ignored) or the
// content of a license file, and returns what it says. The clock is checked first, since no expiry means
// anything on a clock turned back; then the token (Verify or VerifyLicense,
// chosen by its typ); then the machine lock. Every refusal is an
// *OfflineError.
func (v *OfflineVerifier) Verify(s string) (*OfflineResult, error) {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if v.Floor != nil {
		tol := v.Tolerance
		if tol == 0 {
			tol = token.DefaultClockTolerance
		}
		if err := v.Floor.Check(now, tol); err != nil {
			return nil, refusal(err)
		}
	}
	machine, fpErr := v.Machine, error(nil)
	if machine == "" {
		machine, fpErr = MachineFingerprint()
	}

	var res *OfflineResult
	var issued int64
	if token.IsLicenseFile(s) {
		c, err := token.VerifyLicense(s, v.Keys, now, machine)
		if err != nil {
			return nil, refusal(withFingerprintErr(err, fpErr))
		}
		res, issued = &OfflineResult{Kind: KindLicenseFile, License: c}, c.IssuedAt
	} else {
		// A token read from a file ends in a newline; token.Verify stays
		// strict about the token itself.
		c, err := token.Verify(strings.TrimSpace(s), v.Keys, now)
		if err == nil {
			err = token.CheckMachine(c.Machine, machine)
		}
		if err != nil {
			return nil, refusal(withFingerprintErr(err, fpErr))
		}
		res, issued = &OfflineResult{Kind: KindLeaseToken, Lease: c}, c.IssuedAt
	}

	if v.Floor != nil && issued > 0 {
		if err := v.Floor.Observe(time.Unix(issued, 0)); err != nil {
			// Fail closed: a floor that cannot rise guards nothing.
			return nil, refusal(err)
		}
	}
	return res, nil
}

func refusal(err error) *OfflineError { return &OfflineError{Reason: OfflineReason(err), Err: err} }

// withFingerprintErr explains a machine refusal that came from not knowing
// this machine's fingerprint.
func withFingerprintErr(err, fpErr error) error {
	if fpErr != nil && errors.Is(err, token.ErrWrongMachine) {
		return fmt.Errorf("%w (%v)", err, fpErr)
	}
	return err
}

// ExpiresAt is when the accepted token or file stops being valid.
func (r *OfflineResult) ExpiresAt() time.Time {
	if r.License != nil {
		return time.Unix(r.License.ExpiresAt, 0).UTC()
	}
	return time.Unix(r.Lease.ExpiresAt, 0).UTC()
}

// LoadKeySet reads a JWKS file saved from GET /v1/keys (for instance by
// `tally verify --save-keys`).
func LoadKeySet(path string) (token.KeySet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tally client: read keys: %w", err)
	}
	ks, err := token.ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("tally client: keys file %s: %w", path, err)
	}
	return ks, nil
}

// KeySetOf turns the answer of Keys into a KeySet.
func KeySetOf(jwks *api.JWKS) (token.KeySet, error) {
	keys := make([]token.JWK, len(jwks.Keys))
	for i, k := range jwks.Keys {
		keys[i] = token.JWK(k)
	}
	return token.KeySetFromJWKs(keys)
}

package token

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LicenseType is the JOSE typ of a license file. A lease token says "JWT";
// each verifier insists on its own typ, so neither is ever accepted as the
// other even though one key signs both.
const LicenseType = "tally-license+jwt"

// ErrWrongMachine is a license file (or lease token) locked to a machine
// other than the one checking it.
var ErrWrongMachine = errors.New("token: wrong machine")

// LicenseClaims are the claims of a license file: what the license grants,
// signed so that an air-gapped machine can trust it without the cluster.
type LicenseClaims struct {
	Issuer    string           `json:"iss"` // cluster name
	Subject   string           `json:"sub"` // license id
	ProductID string           `json:"prod"`
	Customer  string           `json:"cust"`
	PolicyID  string           `json:"pol"`
	Features  []LicenseFeature `json:"feats"`
	// Machine, when set, is the fingerprint of the only machine the file
	// is valid on.
	Machine   string `json:"mach,omitempty"`
	IssuedAt  int64  `json:"iat"` // unix seconds
	NotBefore int64  `json:"nbf,omitempty"`
	ExpiresAt int64  `json:"exp"` // unix seconds; required
}

// LicenseFeature is one entitlement of a license file. Seats nil means
// entitled without a seat count.
type LicenseFeature struct {
	Name  string `json:"name"`
	Seats *int   `json:"seats,omitempty"`
}

// maxLicenseLen bounds a license JWS: larger than a lease token's limit
// because a policy may list many features.
const maxLicenseLen = 64 << 10

// maxLicenseFileLen bounds a whole license file, comments included.
const maxLicenseFileLen = 2 * maxLicenseLen

// SignLicense returns c as a compact JWS with typ LicenseType, signed with
// the signer's key. It refuses claims without a subject or an expiry: a
// license file that never expires could never be withdrawn.
func (s *Signer) SignLicense(c LicenseClaims) (string, error) {
	if c.Subject == "" {
		return "", errors.New("token: sign license: claims have no sub")
	}
	if c.ExpiresAt <= 0 {
		return "", errors.New("token: sign license: claims have no exp")
	}
	h, err := json.Marshal(header{Alg: Algorithm, Typ: LicenseType, Kid: s.kid})
	if err != nil {
		return "", fmt.Errorf("token: sign license: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("token: sign license: %w", err)
	}
	signed := b64.EncodeToString(h) + "." + b64.EncodeToString(payload)
	return signed + "." + b64.EncodeToString(ed25519.Sign(s.priv, []byte(signed))), nil
}

// VerifyLicense checks a license file against keys at time now, on the
// machine with fingerprint machine, and returns its claims.
//
// file is the file's content: the bare JWS, or the JWS with the comment
// lines EncodeLicenseFile writes (see ParseLicenseFile). The JWS is checked
// like a lease token (strict base64url, alg EdDSA, kid in keys, signature,
// exp and nbf with Leeway), except that its typ must be LicenseType: a lease
// token is refused with ErrWrongType. A file locked to a machine is refused
// with ErrWrongMachine unless machine is that fingerprint; an empty machine
// never matches a locked file. On error the claims are nil.
func VerifyLicense(file string, keys KeySet, now time.Time, machine string) (*LicenseClaims, error) {
	jws, err := ParseLicenseFile(file)
	if err != nil {
		return nil, err
	}
	payload, err := verifyJWS(jws, keys, LicenseType, maxLicenseLen)
	if err != nil {
		return nil, err
	}
	var c LicenseClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: license file has no sub", ErrMalformed)
	}
	if err := checkTimes(c.NotBefore, c.ExpiresAt, now); err != nil {
		return nil, err
	}
	if err := CheckMachine(c.Machine, machine); err != nil {
		return nil, err
	}
	return &c, nil
}

// CheckMachine is the machine lock of license files and lease tokens:
// locked names the machine a token is for ("" for any), machine is the one
// checking it.
func CheckMachine(locked, machine string) error {
	switch {
	case locked == "":
		return nil
	case machine == "":
		return fmt.Errorf("%w: locked to %q, and no machine fingerprint was given", ErrWrongMachine, locked)
	case machine != locked:
		return fmt.Errorf("%w: locked to %q, this machine is %q", ErrWrongMachine, locked, machine)
	}
	return nil
}

// ParseLicenseFile returns the JWS of a license file. A file is text: lines
// that start with '#' are comments, blank lines are ignored, and exactly one
// other line holds the JWS (surrounding spaces, tabs and a trailing CR are
// trimmed, so files edited on any system still load). Comments are not
// signed and carry no meaning; only the JWS is trusted.
func ParseLicenseFile(file string) (string, error) {
	if len(file) > maxLicenseFileLen {
		return "", fmt.Errorf("%w: license file is %d bytes, limit %d", ErrMalformed, len(file), maxLicenseFileLen)
	}
	var jws string
	found := false
	for n, line := range strings.Split(file, "\n") {
		line = strings.Trim(line, " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if found {
			return "", fmt.Errorf("%w: license file line %d: a second token line", ErrMalformed, n+1)
		}
		jws, found = line, true
	}
	if !found {
		return "", fmt.Errorf("%w: license file holds no token line", ErrMalformed)
	}
	return jws, nil
}

// EncodeLicenseFile writes a license file: a comment header that tells a
// person what the file grants, then the JWS on a line of its own. c must be
// the claims jws was signed from. Comment values are cleaned of control
// characters, so no claim can start a line of its own.
func EncodeLicenseFile(jws string, c LicenseClaims) string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "# %-9s %s\n", k+":", clean(v)) }
	b.WriteString("# Tally license file. Only the signed line below is trusted;\n")
	b.WriteString("# these comments are for people and are not checked.\n")
	line("license", c.Subject)
	line("customer", c.Customer)
	line("product", c.ProductID)
	line("policy", c.PolicyID)
	line("features", FormatFeatures(c.Features))
	machine := c.Machine
	if machine == "" {
		machine = "any"
	}
	line("machine", machine)
	line("issued", time.Unix(c.IssuedAt, 0).UTC().Format(time.RFC3339))
	line("expires", time.Unix(c.ExpiresAt, 0).UTC().Format(time.RFC3339))
	line("issuer", c.Issuer)
	b.WriteString(jws)
	b.WriteString("\n")
	return b.String()
}

// FormatFeatures writes features as "cad=3, viewer" (viewer: uncounted).
func FormatFeatures(fs []LicenseFeature) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Name
		if f.Seats != nil {
			parts[i] += "=" + strconv.Itoa(*f.Seats)
		}
	}
	return strings.Join(parts, ", ")
}

// clean replaces control characters with '?' for a one-line comment.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
			return '?'
		}
		return r
	}, s)
}

// IsLicenseFile reports whether s, a license file or a bare JWS, claims to
// be a license file (its header's typ is LicenseType). Nothing is verified:
// it only picks between VerifyLicense and Verify, each of which checks the
// typ again.
func IsLicenseFile(s string) bool {
	jws, err := ParseLicenseFile(s)
	if err != nil {
		return false
	}
	head, _, _ := strings.Cut(jws, ".")
	raw, err := decodePart(head)
	if err != nil {
		return false
	}
	var h struct {
		Typ string `json:"typ"`
	}
	return json.Unmarshal(raw, &h) == nil && h.Typ == LicenseType
}

package token

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by Verify, always wrapped with detail; test with errors.Is.
var (
	ErrMalformed    = errors.New("token: malformed")
	ErrBadAlgorithm = errors.New("token: algorithm not EdDSA")
	ErrUnknownKey   = errors.New("token: unknown key id")
	ErrBadSignature = errors.New("token: bad signature")
	ErrExpired      = errors.New("token: expired")
	ErrNotYetValid  = errors.New("token: not yet valid")
	// ErrWrongType is a well-formed JWS of the other kind: a license file
	// given where a lease token is expected, or the reverse. It wraps
	// ErrMalformed, so callers that only know that sentinel still refuse it.
	ErrWrongType = fmt.Errorf("%w: wrong type", ErrMalformed)
)

// describeType names a JOSE typ for an error message.
func describeType(typ string) string {
	switch typ {
	case leaseType:
		return "a lease token (typ JWT)"
	case LicenseType:
		return "a license file (typ " + LicenseType + ")"
	case "":
		return "no typ"
	}
	return fmt.Sprintf("typ %q", typ)
}

// Leeway is the clock skew tolerated on exp and nbf. It is 0: the server
// stamps both from its own clock and clients renew well before exp. Set it
// once at start-up, before any Verify runs.
var Leeway time.Duration = 0

// KeySet maps a key id to its Ed25519 public key.
type KeySet map[string]ed25519.PublicKey

// maxTokenLen bounds the work done on hostile input. A real token is a few
// hundred bytes.
const maxTokenLen = 16 << 10

// Verify checks tok against keys at time now and returns its claims.
//
// In order: tok must be three strict base64url parts; the header's alg must
// be exactly "EdDSA" (ErrBadAlgorithm otherwise); its typ must be exactly
// "JWT" (ErrWrongType, which is also ErrMalformed: a license file is not a
// lease token); its kid must be in keys (ErrUnknownKey); the Ed25519
// signature over "header.payload" must hold (ErrBadSignature); then exp <= now is ErrExpired and nbf > now is
// ErrNotYetValid, both widened by Leeway. A token without exp is expired.
// Any other defect is ErrMalformed. On error the claims are nil.
func Verify(tok string, keys KeySet, now time.Time) (*Claims, error) {
	payload, err := verifyJWS(tok, keys, leaseType, maxTokenLen)
	if err != nil {
		return nil, err
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if err := checkTimes(c.NotBefore, c.ExpiresAt, now); err != nil {
		return nil, err
	}
	return &c, nil
}

// leaseType is the JOSE typ of a lease token. Verify insists on it so that
// a license file (LicenseType) is never taken for a lease token.
const leaseType = "JWT"

// verifyJWS checks everything but the claims: tok is three strict base64url
// parts of at most limit bytes, the header has alg EdDSA, typ wantTyp and a
// kid found in keys, and the signature holds. It returns the signed payload,
// which is a JSON object.
func verifyJWS(tok string, keys KeySet, wantTyp string, limit int) ([]byte, error) {
	if len(tok) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(tok), limit)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: %d parts, want 3", ErrMalformed, len(parts))
	}
	var raw [3][]byte
	for i, p := range parts {
		b, err := decodePart(p)
		if err != nil {
			return nil, fmt.Errorf("%w: part %d: %v", ErrMalformed, i+1, err)
		}
		raw[i] = b
	}

	kid, err := checkHeader(raw[0], wantTyp)
	if err != nil {
		return nil, err
	}
	pub, ok := keys[kid]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
	if len(pub) != ed25519.PublicKeySize { // ed25519.Verify would panic
		return nil, fmt.Errorf("%w: key %q is %d bytes", ErrUnknownKey, kid, len(pub))
	}
	signed := tok[:len(parts[0])+1+len(parts[1])]
	if !ed25519.Verify(pub, []byte(signed), raw[2]) {
		return nil, fmt.Errorf("%w: key %q", ErrBadSignature, kid)
	}

	// Only signed bytes are parsed as claims.
	if !bytes.HasPrefix(bytes.TrimLeft(raw[1], " \t\r\n"), []byte("{")) {
		return nil, fmt.Errorf("%w: payload is not a JSON object", ErrMalformed)
	}
	return raw[1], nil
}

// checkTimes applies exp and nbf (unix seconds) at now, widened by Leeway.
// A missing exp (0) is expired.
func checkTimes(nbf, exp int64, now time.Time) error {
	// Claims are whole seconds, so comparing against the floor of now is
	// exact: exp <= now  <=>  exp <= floor(now).
	if exp <= now.Add(-Leeway).Unix() {
		return fmt.Errorf("%w: exp %s, now %s", ErrExpired,
			time.Unix(exp, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if nbf > now.Add(Leeway).Unix() {
		return fmt.Errorf("%w: nbf %s, now %s", ErrNotYetValid,
			time.Unix(nbf, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// decodePart decodes one token part. The alphabet is checked first because
// the base64 decoder silently skips '\r' and '\n', which would give one
// signed token many accepted spellings.
func decodePart(p string) ([]byte, error) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("byte %d is %q, not base64url", i, c)
		}
	}
	return b64.DecodeString(p)
}

// checkHeader parses a JOSE header, insists on alg EdDSA and typ wantTyp,
// and returns the kid. Keys are matched exactly: encoding/json would fold
// "ALG" into an "alg" struct field.
func checkHeader(b []byte, wantTyp string) (kid string, err error) {
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b, &h); err != nil {
		return "", fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if h == nil {
		return "", fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	var alg string
	if rawAlg, ok := h["alg"]; !ok {
		return "", fmt.Errorf("%w: header has no alg", ErrBadAlgorithm)
	} else if err := json.Unmarshal(rawAlg, &alg); err != nil || alg != Algorithm {
		return "", fmt.Errorf("%w: alg %s", ErrBadAlgorithm, rawAlg)
	}
	var typ string
	if rawTyp, ok := h["typ"]; ok {
		if err := json.Unmarshal(rawTyp, &typ); err != nil {
			return "", fmt.Errorf("%w: typ %s is not a string", ErrMalformed, rawTyp)
		}
	}
	if typ != wantTyp {
		return "", fmt.Errorf("%w: %s, want %s", ErrWrongType, describeType(typ), describeType(wantTyp))
	}
	// RFC 7515 §4.1.11: a critical extension we do not understand must be
	// refused, and we understand none.
	if _, ok := h["crit"]; ok {
		return "", fmt.Errorf("%w: header has crit", ErrMalformed)
	}
	rawKid, ok := h["kid"]
	if !ok {
		return "", fmt.Errorf("%w: header has no kid", ErrUnknownKey)
	}
	if err := json.Unmarshal(rawKid, &kid); err != nil {
		return "", fmt.Errorf("%w: kid %s is not a string", ErrMalformed, rawKid)
	}
	return kid, nil
}

// KeyIDOfToken returns the kid in tok's header without verifying anything:
// for choosing which key set to fetch and for diagnostics, never for trust.
func KeyIDOfToken(tok string) (string, error) {
	head, _, ok := strings.Cut(tok, ".")
	if !ok {
		return "", fmt.Errorf("%w: no header", ErrMalformed)
	}
	raw, err := decodePart(head)
	if err != nil {
		return "", fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	var h struct {
		Kid *string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.Kid == nil {
		return "", fmt.Errorf("%w: header has no string kid", ErrMalformed)
	}
	return *h.Kid, nil
}

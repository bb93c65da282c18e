package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// maxJWKSLen bounds a JWKS document: a real one holds a few keys of about
// 150 bytes each.
const maxJWKSLen = 1 << 20

// ParseJWKS reads a JWKS document, {"keys": [...]}, as GET /v1/keys serves
// it and as `tally verify --save-keys` stores it for air-gapped machines,
// and returns its Ed25519 keys (see KeySetFromJWKs for which keys count).
// A document without a single usable key is an error: every token would
// then fail as signed by an unknown key, which hides the real mistake.
func ParseJWKS(data []byte) (KeySet, error) {
	if len(data) > maxJWKSLen {
		return nil, fmt.Errorf("token: jwks is %d bytes, limit %d", len(data), maxJWKSLen)
	}
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) {
		return nil, errors.New("token: jwks is not a JSON object")
	}
	var doc struct {
		Keys []JWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("token: jwks: %w", err)
	}
	ks, err := KeySetFromJWKs(doc.Keys)
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, errors.New("token: jwks holds no Ed25519 signing key")
	}
	return ks, nil
}

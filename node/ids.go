package node

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns an opaque, unguessable id such as "lic_k3j5...".
func newID(prefix string) (string, error) {
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b)), nil
}

// newLicenseKey returns a 160-bit random key in groups people can read
// aloud: TLY-XXXXXX-XXXXXX-XXXXXX-XXXXXX-XXXXXXXX.
func newLicenseKey() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := idEncoding.EncodeToString(b) // 32 characters
	return "TLY-" + s[0:6] + "-" + s[6:12] + "-" + s[12:18] + "-" + s[18:24] + "-" + s[24:32], nil
}

package client

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func TestFingerprintSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	systemd := write("machine-id", "4c4c4544004d3510804cb4c04f4e3032\n")
	dbus := write("dbus-machine-id", "0123456789abcdef0123456789abcdef\n")
	uninit := write("uninit", "uninitialized\n")
	zeros := write("zeros", "00000000000000000000000000000000\n")
	empty := write("empty", "\n")
	missing := filepath.Join(dir, "missing")
	host := func() (string, error) { return "WS-7.example.com", nil }
	noHost := func() (string, error) { return "", errors.New("no host name") }

	// The value is pinned: a change would unlock every exported file.
	sum := sha256.Sum256([]byte("tally machine fingerprint v1\x00machine-id:4c4c4544004d3510804cb4c04f4e3032"))
	pinned := hex.EncodeToString(sum[:16])

	fp := func(files []string, h func() (string, error)) string {
		t.Helper()
		got, err := fingerprintFrom(files, h)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got) {
			t.Fatalf("fingerprint %q is not 32 hex characters", got)
		}
		return got
	}
	if got := fp([]string{systemd, dbus}, host); got != pinned {
		t.Fatalf("fingerprint = %s, want %s", got, pinned)
	}
	if fp([]string{systemd}, host) != fp([]string{systemd}, noHost) {
		t.Error("the host name changed a fingerprint taken from machine-id")
	}
	if fp([]string{missing, uninit, zeros, empty, dbus}, host) != fp([]string{dbus}, host) {
		t.Error("unusable id files were not skipped")
	}
	if fp([]string{dbus}, host) == pinned {
		t.Error("two machine ids gave one fingerprint")
	}
	byHost := fp([]string{missing}, host)
	if byHost != fp(nil, func() (string, error) { return " ws-7.EXAMPLE.com\n", nil }) {
		t.Error("host name fingerprint depends on case or spaces")
	}
	if byHost == fp(nil, func() (string, error) { return "ws-8.example.com", nil }) {
		t.Error("two host names gave one fingerprint")
	}
	// The raw id never shows.
	if byHost == "ws-7.example.com" || pinned == "4c4c4544004d3510804cb4c04f4e3032" {
		t.Error("fingerprint is the raw id")
	}
	if _, err := fingerprintFrom([]string{missing}, noHost); err == nil {
		t.Error("no id and no host name gave a fingerprint")
	}
}

func TestMachineFingerprintStable(t *testing.T) {
	a, err := MachineFingerprint()
	if err != nil {
		t.Skipf("this machine has no fingerprint: %v", err)
	}
	b, _ := MachineFingerprint()
	if a != b {
		t.Fatalf("two calls gave %s and %s", a, b)
	}
}

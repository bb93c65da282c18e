package client

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
)

// fingerprintPrefix is hashed in front of the machine's id. It keeps the
// fingerprint Tally's own: the same machine id hashed by another program
// gives another value, so a fingerprint shown to a license admin does not
// reveal the raw id, and the raw id does not reveal the fingerprint.
const fingerprintPrefix = "tally machine fingerprint v1\x00"

// machineIDFiles are read in order; the first that holds an id wins.
// /etc/machine-id is systemd's (and most Linux distributions'), written
// once at install; /var/lib/dbus/machine-id is D-Bus's older copy, present
// where systemd is not; /etc/hostid is the BSDs'.
var machineIDFiles = []string{"/etc/machine-id", "/var/lib/dbus/machine-id", "/etc/hostid"}

// MachineFingerprint returns this machine's fingerprint: 32 lowercase hex
// characters, the first 128 bits of sha256(prefix || source || ":" || id).
// Lock a license file to it with `tally license export --machine`, and hold
// seats under it (api.Holder.Machine) so lease tokens are locked too.
//
// The id is the first of /etc/machine-id, /var/lib/dbus/machine-id and
// /etc/hostid that holds one, else the host name in lower case. It is
// stable across reboots. It changes when the operating system is
// reinstalled or the machine id is regenerated (systemd-machine-id-setup,
// cloning a VM image that then gets a fresh id), and, on machines without
// an id file (macOS, Windows, many containers), when the host name changes.
// A container without /etc/machine-id takes its host name, which is often
// the container id: mount the host's /etc/machine-id to keep it.
func MachineFingerprint() (string, error) {
	return fingerprintFrom(machineIDFiles, os.Hostname)
}

// fingerprintFrom is MachineFingerprint with its inputs given, for tests.
func fingerprintFrom(files []string, hostname func() (string, error)) (string, error) {
	for _, path := range files {
		if id, ok := readMachineID(path); ok {
			return hashFingerprint("machine-id", id), nil
		}
	}
	host, err := hostname()
	host = strings.ToLower(strings.TrimSpace(host))
	if err != nil || host == "" {
		return "", errors.New("tally client: no machine id file and no host name to fingerprint this machine")
	}
	return hashFingerprint("hostname", host), nil
}

// readMachineID returns the id in path, if it holds a usable one. systemd
// writes "uninitialized" during the first boot; an empty or all-zero id is
// no id either.
func readMachineID(path string) (string, bool) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) > 1024 {
		return "", false
	}
	id := strings.ToLower(strings.TrimSpace(string(data)))
	if id == "" || id == "uninitialized" || strings.Trim(id, "0") == "" {
		return "", false
	}
	return id, true
}

func hashFingerprint(source, id string) string {
	sum := sha256.Sum256([]byte(fingerprintPrefix + source + ":" + id))
	return hex.EncodeToString(sum[:16])
}

package node

import (
	"os"
	"path/filepath"
	"testing"
)

func TestKeyFileEpoch(t *testing.T) {
	tests := []struct {
		name  string
		epoch uint64
		ok    bool
	}{
		{"signing-key.pem", 0, true},
		{"signing-key-1.pem", 1, true},
		{"signing-key-42.pem", 42, true},
		{"signing-key-0.pem", 0, false}, // epoch 0 has one name only
		{"signing-key-x.pem", 0, false},
		{"signing-key-3.pem.tmp", 0, false},
		{".tally-key-123", 0, false},
		{"raft", 0, false},
	}
	for _, tt := range tests {
		e, ok := keyFileEpoch(tt.name)
		if e != tt.epoch || ok != tt.ok {
			t.Errorf("keyFileEpoch(%q) = %d, %v; want %d, %v", tt.name, e, ok, tt.epoch, tt.ok)
		}
		if tt.ok && filepath.Base(keyPath("d", tt.epoch)) != tt.name {
			t.Errorf("keyPath(%d) = %s, want %s", tt.epoch, keyPath("d", tt.epoch), tt.name)
		}
	}
}

// A data dir keeps the newest key only; reopening it gives the same key.
func TestKeyringKeepsNewestEpoch(t *testing.T) {
	dir := t.TempDir()
	k, err := openKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := k.cur.Load()
	if first.epoch != 0 {
		t.Fatalf("fresh dir epoch = %d", first.epoch)
	}
	next, err := k.load(3)
	if err != nil {
		t.Fatal(err)
	}
	if next.signer.KeyID() == first.signer.KeyID() {
		t.Fatal("a new epoch reused the old key")
	}
	fi, err := os.Stat(keyPath(dir, 3))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("epoch 3 key file: %v %v", fi, err)
	}

	// A crash after making the new key but before removing the old one:
	// the reopened ring takes the newest and removes the rest.
	again, err := openKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cur := again.cur.Load(); cur.epoch != 3 || cur.signer.KeyID() != next.signer.KeyID() {
		t.Fatalf("reopened ring: epoch %d kid %s, want 3 %s", cur.epoch, cur.signer.KeyID(), next.signer.KeyID())
	}
	if _, err := os.Stat(keyPath(dir, 0)); !os.IsNotExist(err) {
		t.Fatalf("epoch 0 key still on disk: %v", err)
	}
}

package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const pemType = "PRIVATE KEY"

// LoadOrCreateKey returns the Ed25519 private key stored at path, a PEM
// "PRIVATE KEY" block holding PKCS#8. If the file does not exist it creates
// one with a fresh key from crypto/rand: the file is 0600 and a missing
// parent directory is made 0700. The file appears whole or not at all, and
// two processes racing to create it end up with the same key.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, errors.New("token: key file path is empty")
	}
	priv, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return priv, err
	}
	if err := createKey(path); err != nil {
		return nil, err
	}
	return loadKey(path)
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemType {
		return nil, fmt.Errorf("token: key file %s: no PEM %q block", path, pemType)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("token: key file %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("token: key file %s: %T, not an Ed25519 key", path, k)
	}
	return priv, nil
}

// createKey writes a new key to a temporary file in path's directory and
// hard-links it into place, which fails if path appeared meanwhile; that
// case is not an error, the caller loads whichever key won.
func createKey(path string) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token: create key dir: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("token: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("token: encode key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tally-key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("token: create key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("token: create key: %w", err)
	}
	if err := pem.Encode(tmp, &pem.Block{Type: pemType, Bytes: der}); err != nil {
		tmp.Close()
		return fmt.Errorf("token: write key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("token: write key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("token: write key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("token: install key: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes the new directory entry durable where the platform allows.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

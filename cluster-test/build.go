package clustertest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binary is the tally binary under test, built at most once per process.
var binary struct {
	once sync.Once
	path string
	dir  string // our build directory, removed by Main; "" for TALLY_BIN
	err  error
}

// Main runs the tests and removes the binary New built. Use it from
// TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if binary.dir != "" {
		_ = os.RemoveAll(binary.dir)
	}
	return code
}

// Binary returns the path of the tally binary, building it on first use.
func Binary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		if p := os.Getenv("TALLY_BIN"); p != "" {
			binary.path, binary.err = filepath.Abs(p)
			return
		}
		binary.path, binary.dir, binary.err = build()
	})
	if binary.err != nil {
		t.Fatalf("tally binary: %v", binary.err)
	}
	return binary.path
}

// build compiles ./cmd/tally of the enclosing module into a new temporary
// directory.
func build() (path, dir string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "tally-clustertest-")
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "tally")
	cmd := exec.Command("go", "build", "-o", path, "./cmd/tally")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build ./cmd/tally: %v\n%s", err, out)
	}
	return path, dir, nil
}

// moduleRoot walks up from the working directory to the go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The demo banner prints commands as "tally ...": it must say how to reach
// this binary when PATH would not, and stay quiet when it would.
func TestPathHint(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Skip("no executable path:", err)
	}

	t.Setenv("PATH", t.TempDir())
	hint := pathHint()
	if want := "export PATH=" + filepath.Dir(self) + ":$PATH"; !strings.Contains(hint, want) {
		t.Fatalf("pathHint() = %q with tally not on PATH, want it to contain %q", hint, want)
	}

	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "tally")); err != nil {
		t.Skip("cannot symlink:", err)
	}
	t.Setenv("PATH", dir)
	if hint := pathHint(); hint != "" {
		t.Fatalf("pathHint() = %q with this binary on PATH as tally, want nothing", hint)
	}
}

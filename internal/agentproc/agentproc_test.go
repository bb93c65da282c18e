package agentproc

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// The child sees our environment without TALLY_* and with the extras.
func TestStartFiltersTallyEnv(t *testing.T) {
	t.Setenv("TALLY_ADDR", "parent-only")
	t.Setenv("AGENTPROC_KEPT", "yes")
	var out bytes.Buffer
	cmd := exec.Command("env")
	cmd.Stdout = &out
	if err := Start(cmd, "TALLY_LOG_LEVEL=warn"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	env := out.String()
	for _, want := range []string{"AGENTPROC_KEPT=yes", "TALLY_LOG_LEVEL=warn"} {
		if !strings.Contains(env, want) {
			t.Errorf("child env lacks %s", want)
		}
	}
	if strings.Contains(env, "TALLY_ADDR=") {
		t.Errorf("child env has the parent's TALLY_ADDR")
	}
}

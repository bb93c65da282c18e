// Package agentproc starts `tally agent` child processes whose lives are
// tied to their parent's: tally bench --local and the cluster tests both run
// whole clusters as children, and a parent that crashes or is killed must
// not leave a cluster behind.
package agentproc

import (
	"os"
	"os/exec"
	"strings"
)

// Start starts cmd as an agent: with our environment minus the TALLY_*
// variables (an agent takes them as its flags; the parent's are meant for
// itself) followed by extraEnv, and, on Linux, killed by the kernel when
// the parent dies.
func Start(cmd *exec.Cmd, extraEnv ...string) error {
	cmd.Env = append(env(), extraEnv...)
	cmd.SysProcAttr = sysProcAttr()
	return start(cmd)
}

func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TALLY_") {
			out = append(out, kv)
		}
	}
	return out
}

//go:build !linux

package agentproc

import (
	"os/exec"
	"syscall"
)

// Only Linux ties a child's life to its parent's; elsewhere stopping the
// cluster is the parent's job alone.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func start(cmd *exec.Cmd) error { return cmd.Start() }

//go:build !linux

package bench

import (
	"os/exec"
	"syscall"
)

// sysProcAttr: only Linux ties a child's life to ours; elsewhere Stop is
// the only guard.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func startProcess(cmd *exec.Cmd) error { return cmd.Start() }

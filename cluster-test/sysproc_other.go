//go:build !linux

package clustertest

import (
	"os/exec"
	"syscall"
)

// sysProcAttr: only Linux can tie a child's life to ours; elsewhere
// t.Cleanup is the only guard.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func startProcess(cmd *exec.Cmd) error { return cmd.Start() }

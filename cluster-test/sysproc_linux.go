package clustertest

import "syscall"

// sysProcAttr makes the kernel kill an agent if the test process dies
// first, so a crashed `go test` leaves no cluster behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

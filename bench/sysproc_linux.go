package bench

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// sysProcAttr makes the kernel kill an agent if bench dies first, so a
// crashed or killed bench leaves no cluster behind.
//
// The kernel sends Pdeathsig when the thread that forked the child ends,
// not the process, so every agent is forked from one goroutine locked to
// its thread for the life of bench.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

var spawner struct {
	once sync.Once
	reqs chan func()
}

// startProcess runs cmd.Start on the spawner thread.
func startProcess(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread outlives every agent
			for f := range spawner.reqs {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- func() { errc <- cmd.Start() }
	return <-errc
}

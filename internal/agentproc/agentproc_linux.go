package agentproc

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// The kernel sends Pdeathsig when the *thread* that forked the child ends,
// not the process (go.dev/issue/27505), and the Go runtime ends a thread
// whose locked goroutine exits. So every agent is started from one
// goroutine locked to its thread for the life of the parent.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

var spawner struct {
	once sync.Once
	reqs chan func()
}

// start runs cmd.Start on the spawner thread.
func start(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every agent
			for f := range spawner.reqs {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- func() { errc <- cmd.Start() }
	return <-errc
}

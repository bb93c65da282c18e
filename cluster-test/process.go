package clustertest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/internal/agentproc"
	"github.com/tallyhq/tally/internal/freeport"
)

// logTailLines is how much of each node's log a failed test prints.
const logTailLines = 80

// node is one agent process and everything needed to start it again.
type node struct {
	index                          int
	id                             string
	dataDir                        string
	logPath                        string
	httpAddr, raftAddr, gossipAddr string
	join                           []string
	netns                          string // the node's network namespace; "" on loopback

	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{} // closed when the current process has exited
	waitErr    error
	expectExit bool // we signalled it; an exit is no surprise
	paused     bool
	starts     int
	joining    bool // start without --bootstrap-expect (StartJoining)
}

// start launches the agent for nd; its stderr and stdout go to nd's log.
func (c *Cluster) start(nd *node) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil && !isClosed(nd.done) {
		return fmt.Errorf("%s is already running", nd.id)
	}
	if err := os.MkdirAll(nd.dataDir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	nd.starts++
	fmt.Fprintf(logf, "=== clustertest: start #%d of %s at %s ===\n", nd.starts, nd.id, time.Now().Format(time.RFC3339Nano))
	args := []string{"agent",
		"--node-id", nd.id,
		"--data-dir", nd.dataDir,
		"--http-addr", nd.httpAddr,
		"--raft-addr", nd.raftAddr,
		"--gossip-addr", nd.gossipAddr,
		"--admin-token-file", c.tokenFile,
		"--raft-profile", c.opts.raftProfile,
		"--log-level", c.opts.logLevel,
	}
	if !nd.joining {
		args = append(args, "--bootstrap-expect", strconv.Itoa(len(c.nodes)))
	}
	for _, j := range nd.join {
		args = append(args, "--join", j)
	}
	args = append(args, c.opts.extraArgs...)
	cmd := exec.Command(c.bin, args...)
	if nd.netns != "" {
		// ip enters the namespace and execs the agent in its own place:
		// the process, its pid and its Pdeathsig stay the agent's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", nd.netns, c.bin}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := agentproc.Start(cmd, c.opts.env...); err != nil {
		_ = logf.Close()
		return err
	}
	done := make(chan struct{})
	nd.cmd, nd.done, nd.waitErr, nd.expectExit, nd.paused = cmd, done, nil, false, false
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		nd.mu.Lock()
		nd.waitErr = err
		nd.mu.Unlock()
		close(done)
	}()
	return nil
}

func isClosed(ch chan struct{}) bool {
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (nd *node) running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil && !isClosed(nd.done)
}

func (nd *node) live() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil && !isClosed(nd.done) && !nd.paused
}

func (nd *node) exitErr() error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.waitErr
}

// exitedUnexpectedly is true when the process ended without our signal.
func (nd *node) exitedUnexpectedly() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil && isClosed(nd.done) && !nd.expectExit
}

// signal marks the coming exit as expected (for SIGKILL and SIGTERM) and
// sends sig; it returns the channel that closes on exit.
func (nd *node) signal(sig syscall.Signal, expectExit bool) (chan struct{}, error) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil || isClosed(nd.done) {
		return nil, fmt.Errorf("%s is not running", nd.id)
	}
	if expectExit {
		nd.expectExit = true
	}
	if err := nd.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return nil, err
	}
	return nd.done, nil
}

// kill sends SIGKILL and waits for the exit; a node that is not running is
// left alone.
func (nd *node) kill() {
	done, err := nd.signal(syscall.SIGKILL, true)
	if err != nil {
		return
	}
	<-done // SIGKILL cannot be caught; even a stopped process dies
	nd.mu.Lock()
	nd.paused = false
	nd.mu.Unlock()
}

// stop sends SIGTERM (after SIGCONT if paused) and waits up to timeout for
// the exit, then kills.
func (nd *node) stop(timeout time.Duration) error {
	nd.mu.Lock()
	paused := nd.paused
	nd.mu.Unlock()
	if paused {
		if err := nd.resume(); err != nil {
			return err
		}
	}
	done, err := nd.signal(syscall.SIGTERM, true)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		nd.kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed it", nd.id, timeout)
	}
}

func (nd *node) pause() error {
	if _, err := nd.signal(syscall.SIGSTOP, false); err != nil {
		return err
	}
	nd.mu.Lock()
	nd.paused = true
	nd.mu.Unlock()
	return nil
}

func (nd *node) resume() error {
	if _, err := nd.signal(syscall.SIGCONT, false); err != nil {
		return err
	}
	nd.mu.Lock()
	nd.paused = false
	nd.mu.Unlock()
	return nil
}

// nodePorts are one node's loopback addresses.
type nodePorts struct{ http, raft, gossip string }

// freePorts picks 3n distinct free loopback ports, each free for TCP and
// UDP, below the ephemeral range (internal/freeport says why).
func freePorts(t testing.TB, n int) []nodePorts {
	t.Helper()
	addrs, err := freeport.Addrs(3 * n)
	if err != nil {
		t.Fatalf("free ports: %v", err)
	}
	out := make([]nodePorts, n)
	for i := range out {
		out[i] = nodePorts{http: addrs[3*i], raft: addrs[3*i+1], gossip: addrs[3*i+2]}
	}
	return out
}

// FreeAddrs picks free loopback addresses for one process the harness does
// not start itself (tally dev): HTTP, Raft, and gossip (free for both TCP
// and UDP).
func FreeAddrs(t testing.TB) (httpAddr, raftAddr, gossipAddr string) {
	t.Helper()
	p := freePorts(t, 1)[0]
	return p.http, p.raft, p.gossip
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

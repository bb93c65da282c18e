package clustertest_test

// scripts/run-local.sh is `make run`: three agents on loopback, the demo
// license, a restart command for a node the user killed, and Ctrl-C that
// stops every node, the restarted one included. The script runs here on
// shifted ports (TALLY_LOCAL_PORT_OFFSET) so it never meets a `make run`
// of the user's.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
	clustertest "github.com/tallyhq/tally/cluster-test"
	"github.com/tallyhq/tally/internal/syncbuf"
)

// freePortOffset finds an offset at which the script's nine ports
// (7101-7103, 7201-7203, 7301-7303 shifted) are all free.
func freePortOffset(t *testing.T) int {
	t.Helper()
	for range 50 {
		// Below 32768, the kernel's ephemeral range (see internal/freeport).
		off := 2000 + rand.IntN(23000)
		free := true
		for _, base := range []int{7100, 7200, 7300} {
			for i := 1; i <= 3 && free; i++ {
				ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+off+i))
				if err != nil {
					free = false
					break
				}
				ln.Close()
			}
		}
		if free {
			return off
		}
	}
	t.Fatal("no free port range for scripts/run-local.sh")
	return 0
}

// alive reports whether process pid exists.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func readPid(t *testing.T, dir, node string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, node+".pid"))
	if err != nil {
		t.Fatalf("pid file of %s: %v", node, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file of %s: %v", node, err)
	}
	return pid
}

func TestRunLocalScript(t *testing.T) {
	skipShort(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	off := freePortOffset(t)
	env := append(os.Environ(),
		"TALLY_LOCAL_BIN="+clustertest.Binary(t),
		"TALLY_LOCAL_DIR="+dir,
		"TALLY_LOCAL_PORT_OFFSET="+strconv.Itoa(off))
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(7100+off+i) }

	var out syncbuf.Buffer
	script := exec.Command("bash", filepath.Join(root, "scripts", "run-local.sh"))
	script.Dir = root
	script.Env = env
	script.Stdout, script.Stderr = &out, &out
	// Its own process group, as a terminal gives it: Ctrl-C is a SIGINT
	// to the whole group.
	script.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := script.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- script.Wait() }()
	var pids []int
	t.Cleanup(func() {
		// Whatever happened, leave no agent behind.
		_ = syscall.Kill(-script.Process.Pid, syscall.SIGKILL)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	waitOutput := func(what string, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !strings.Contains(out.String(), what) {
			select {
			case err := <-exited:
				t.Fatalf("run-local.sh ended (%v) before printing %q:\n%s", err, what, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("run-local.sh printed no %q within %v:\n%s", what, timeout, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitOutput("Press Ctrl-C", 90*time.Second)

	banner := out.String()
	keyM, tokM := demoKeyLine.FindStringSubmatch(banner), demoTokenLine.FindStringSubmatch(banner)
	if keyM == nil || tokM == nil {
		t.Fatalf("no demo license or admin token in the banner:\n%s", banner)
	}
	key, token := keyM[1], tokM[1]
	for _, want := range []string{"TALLY_ADDR=" + addr(1) + "," + addr(2) + "," + addr(3), "restart nX"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	cl, err := client.New(client.Config{Addrs: []string{addr(1), addr(2), addr(3)}, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	checkDemoLicense(t, "make run", key, func(key, feature string) (*api.ValidateResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.Validate(ctx, api.ValidateRequest{LicenseKey: key, Feature: feature}, api.ConsistencyLinearizable)
	})
	for _, n := range []string{"n1", "n2", "n3"} {
		pids = append(pids, readPid(t, dir, n))
	}

	// Kill n3 as the tour does, then bring it back with the script.
	if err := syscall.Kill(pids[2], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n3 gone", func() bool { return !alive(pids[2]) })
	restart := exec.Command("bash", filepath.Join(root, "scripts", "run-local.sh"), "restart", "n3")
	restart.Dir, restart.Env = root, env
	// Started from "another terminal": not in the script's process group,
	// so only the pid file can stop it.
	restart.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if b, err := restart.CombinedOutput(); err != nil {
		t.Fatalf("run-local.sh restart n3: %v\n%s", err, b)
	}
	pids = append(pids, readPid(t, dir, "n3"))
	n3, err := client.New(client.Config{Addrs: []string{addr(3)}, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the restarted n3 to answer a linearizable validate", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		v, err := n3.Validate(ctx, api.ValidateRequest{LicenseKey: key, Feature: "cad"}, api.ConsistencyLinearizable)
		return err == nil && v.Valid
	})

	// Ctrl-C.
	if err := syscall.Kill(-script.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("run-local.sh still runs 30 s after Ctrl-C:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "stopped.") {
		t.Errorf("no \"stopped.\" after Ctrl-C:\n%s", out.String())
	}
	waitFor(t, 20*time.Second, "every node to stop after Ctrl-C", func() bool {
		for _, pid := range pids {
			if alive(pid) && !zombie(pid) {
				return false
			}
		}
		return true
	})
}

// zombie reports whether pid has exited but not been reaped (a child of
// this test's shell that nobody waits for still shows to kill -0).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// waitFor polls cond until it holds, or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package clustertest_test

// The pieces of `make run` and `tally dev`, with the real binary: the demo
// license they print must validate as the README says, and a second run
// must find the first one's license rather than make another.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
	clustertest "github.com/tallyhq/tally/cluster-test"
	"github.com/tallyhq/tally/internal/agentproc"
)

// The banner of tally demo and tally dev (cmd/tally/dev.go).
var (
	demoKeyLine   = regexp.MustCompile(`demo license: +(\S+)`)
	demoTokenLine = regexp.MustCompile(`admin token: +(\S+)`)
)

const demoCustomer = "Demo Customer" // cmd/tally/dev.go

// validateFunc asks one node whether key may use feature.
type validateFunc func(key, feature string) (*api.ValidateResponse, error)

// checkDemoLicense asserts what the README promises of the demo license:
// feature cad with 3 seats, none taken, viewer entitled, nothing else.
func checkDemoLicense(t *testing.T, where, key string, validate validateFunc) {
	t.Helper()
	cad, err := validate(key, "cad")
	if err != nil {
		t.Fatalf("validate cad through %s: %v", where, err)
	}
	if !cad.Valid || cad.Seats["cad"] != (api.SeatUsage{Total: 3, InUse: 0}) {
		t.Errorf("validate cad through %s: valid %v, seats %+v; want valid, cad 0/3", where, cad.Valid, cad.Seats)
	}
	if cad.License == nil || cad.License.Customer != demoCustomer {
		t.Errorf("validate cad through %s: license %+v, want customer %q", where, cad.License, demoCustomer)
	}
	viewer, err := validate(key, "viewer")
	if err != nil {
		t.Fatalf("validate viewer through %s: %v", where, err)
	}
	if !viewer.Valid {
		t.Errorf("validate viewer through %s: not valid (code %q)", where, viewer.Code)
	}
	other, err := validate(key, "not-a-feature")
	if err != nil {
		t.Fatalf("validate not-a-feature through %s: %v", where, err)
	}
	if other.Valid || other.Code != api.CodeFeatureNotEntitled {
		t.Errorf("validate not-a-feature through %s: valid %v code %q, want %s", where, other.Valid, other.Code, api.CodeFeatureNotEntitled)
	}
}

// demoKey runs `tally demo` against every node of c and returns the key it
// printed.
func demoKey(t *testing.T, c *clustertest.Cluster) string {
	t.Helper()
	code, out, errOut := tallyCLI(t, c, "demo", "--addr", strings.Join(c.Addrs(), ","))
	m := demoKeyLine.FindSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("tally demo: exit %d, no demo license line\n%s\n%s", code, out, errOut)
	}
	return string(m[1])
}

// make run provisions its license with `tally demo` (scripts/run-local.sh);
// running it again must print the same license, not make a second one.
func TestDemoProvisionsOnce(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 3)
	key := demoKey(t, c)
	for i := range c.N() {
		checkDemoLicense(t, c.NodeID(i), key, func(key, feature string) (*api.ValidateResponse, error) {
			var out api.ValidateResponse
			err := c.Call(i, http.MethodPost, "/v1/validate?consistency="+api.ConsistencyLinearizable, api.ValidateRequest{LicenseKey: key, Feature: feature}, &out)
			return &out, err
		})
	}

	if again := demoKey(t, c); again != key {
		t.Fatalf("second tally demo printed license %s, the first %s", again, key)
	}
	var lics api.LicenseList
	if err := c.Call(c.Leader(), http.MethodGet, "/v1/licenses?consistency="+api.ConsistencyLinearizable, nil, &lics); err != nil {
		t.Fatal(err)
	}
	if len(lics.Licenses) != 1 {
		t.Errorf("%d licenses after two tally demo runs, want 1: %+v", len(lics.Licenses), lics.Licenses)
	}
	c.CheckInvariants(t)
}

// tally dev keeps its state in its data dir: a second start there serves
// the same demo license and admin token.
func TestDevKeepsItsDemoLicense(t *testing.T) {
	skipShort(t)
	dir := filepath.Join(t.TempDir(), "tally-data")
	httpAddr, raftAddr, gossipAddr := clustertest.FreeAddrs(t)
	args := []string{"dev", "--data-dir", dir, "--http-addr", httpAddr, "--raft-addr", raftAddr, "--gossip-addr", gossipAddr}

	key, token := runDev(t, args, httpAddr)
	key2, token2 := runDev(t, args, httpAddr)
	if key2 != key {
		t.Errorf("second tally dev printed license %s, the first %s", key2, key)
	}
	if token2 != token {
		t.Errorf("second tally dev printed another admin token")
	}
}

// runDev starts `tally dev` with args, waits for its banner, checks the
// demo license through httpAddr, stops it with SIGTERM and returns the
// license key and admin token it printed.
func runDev(t *testing.T, args []string, httpAddr string) (key, token string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "dev.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(clustertest.Binary(t), args...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agentproc.Start(cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		// Read to EOF first: Wait closes the pipe.
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	// drain keeps the reader going once the banner is read, so the process
	// never blocks on a full pipe.
	drain := func() {
		go func() {
			for range lines {
			}
		}()
	}
	stopped := false
	defer func() {
		if !stopped {
			drain()
			_ = cmd.Process.Kill()
			<-exited
			t.Logf("tally dev's stderr:\n%s", readFile(logPath))
		}
	}()

	deadline := time.After(60 * time.Second)
	for key == "" || token == "" {
		// The banner comes once the node leads and has provisioned.
		select {
		case l, ok := <-lines:
			if !ok {
				err := <-exited
				stopped = true
				t.Fatalf("tally dev ended before printing its license and token: %v\n%s", err, readFile(logPath))
			}
			if m := demoKeyLine.FindStringSubmatch(l); m != nil {
				key = m[1]
			}
			if m := demoTokenLine.FindStringSubmatch(l); m != nil {
				token = m[1]
			}
		case <-deadline:
			t.Fatalf("tally dev printed no license and token within 60 s")
		}
	}

	cl, err := client.New(client.Config{Addrs: []string{httpAddr}, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	checkDemoLicense(t, "tally dev", key, func(key, feature string) (*api.ValidateResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.Validate(ctx, api.ValidateRequest{LicenseKey: key, Feature: feature}, api.ConsistencyLinearizable)
	})

	drain()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("tally dev after SIGTERM: %v\n%s", err, readFile(logPath))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("tally dev still runs 30 s after SIGTERM")
	}
	return key, token
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

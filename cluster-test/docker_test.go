package clustertest

// This file tests the repository's docker-compose.yml, not the harness: it
// is in package clustertest only to share its small helpers (moduleRoot,
// routeClash, output, poll).

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
	"github.com/tallyhq/tally/internal/freeport"
)

// composeProject is one run of docker-compose.yml under its own project
// name, image, subnet, ports and token.
type composeProject struct {
	t       *testing.T
	compose []string // "docker compose" or "docker-compose"
	file    string
	name    string
	image   string
	env     []string
	addrs   []string // published HTTP addresses of n1, n2, n3
	token   string
}

// composeCommand is how this machine runs Compose: the docker plugin if
// it answers, else docker-compose; nil if neither.
func composeCommand() []string {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	return nil
}

// TestDockerCompose brings docker-compose.yml up from an image of this
// tree, provisions the demo license with the host's `tally demo` as
// docs/operations.md says, takes one of its 3 seats through each node,
// kills the leader's container and checks that the survivors still hold
// the seats, take a new checkout and agree on one state (DESIGN §8).
func TestDockerCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("docker test: builds an image and runs three containers")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("docker does not work here: `docker info`: " + err.Error())
	}
	compose := composeCommand()
	if compose == nil {
		t.Skip("neither `docker compose` nor docker-compose is installed")
	}
	start := time.Now()
	p := newComposeProject(t, compose)
	p.buildImage()
	p.up()
	t.Logf("cluster up in %s (%s)", time.Since(start).Round(time.Millisecond), strings.Join(compose, " "))

	leader := p.waitLeader(45 * time.Second)
	t.Logf("leader n%d after %s", leader+1, time.Since(start).Round(time.Millisecond))
	key := p.demo()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leases := make([]*api.LeaseResponse, 3)
	for i, addr := range p.addrs {
		l, err := p.client(addr).Checkout(ctx, api.CheckoutRequest{LicenseKey: key, Feature: "cad", Holder: dockerHolder(i)})
		if err != nil {
			t.Fatalf("checkout through n%d: %v", i+1, err)
		}
		leases[i] = l
	}

	p.kill(leader)
	var survivors []string
	for i, a := range p.addrs {
		if i != leader {
			survivors = append(survivors, a)
		}
	}
	cl := p.client(survivors...)
	// The three seats outlive the leader: a fourth holder is refused...
	if _, err := cl.Checkout(ctx, api.CheckoutRequest{LicenseKey: key, Feature: "cad", Holder: dockerHolder(3)}); !errors.Is(err, api.ErrNoSeats) {
		t.Fatalf("fourth checkout after the leader died: %v, want no_seats_available", err)
	}
	// ...until one seat is given back, through a survivor.
	if err := cl.Checkin(ctx, leases[0].Lease.ID, key); err != nil {
		t.Fatalf("checkin through a survivor: %v", err)
	}
	l, err := cl.Checkout(ctx, api.CheckoutRequest{LicenseKey: key, Feature: "cad", Holder: dockerHolder(3)})
	if err != nil {
		t.Fatalf("checkout through a survivor after the leader died: %v", err)
	}
	// DESIGN §8 on the survivors: the same state hash, byte-identical audit
	// logs whose chain verifies, no feature over its seats.
	for _, v := range p.invariantViolations(survivors) {
		t.Errorf("invariant violated: %s", v)
	}
	t.Logf("lease %s taken after n%d was killed; test took %s", l.Lease.ID, leader+1, time.Since(start).Round(time.Millisecond))
}

// invariantViolations runs the harness's invariant checks on the nodes at
// addrs, through their published ports.
func (p *composeProject) invariantViolations(addrs []string) []string {
	hc := &http.Client{}
	rs := make([]nodeReader, len(addrs))
	for k, addr := range addrs {
		name := "the node at " + addr
		for i, a := range p.addrs {
			if a == addr {
				name = fmt.Sprintf("n%d", i+1)
			}
		}
		rs[k] = nodeReader{name: name, get: func(path string, out any) error {
			raw, err := callRaw(hc, name, addr, p.token, http.MethodGet, path, nil)
			if err != nil {
				return err
			}
			return json.Unmarshal(raw, out)
		}}
	}
	return invariantViolations(func() ([]nodeReader, error) { return rs, nil })
}

func dockerHolder(k int) api.Holder {
	return api.Holder{Machine: fmt.Sprintf("m%d", k), User: fmt.Sprintf("u%d", k), Hostname: fmt.Sprintf("h%d.example.test", k), Process: fmt.Sprintf("cad:%d", k)}
}

func newComposeProject(t *testing.T, compose []string) *composeProject {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	_, _ = crand.Read(raw)
	p := &composeProject{
		t:       t,
		compose: compose,
		file:    filepath.Join(root, "docker-compose.yml"),
		name:    fmt.Sprintf("tallyct%d", os.Getpid()),
		image:   fmt.Sprintf("tally:ct%d", os.Getpid()),
		token:   hex.EncodeToString(raw),
	}
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(p.token), 0o600); err != nil {
		t.Fatal(err)
	}
	p.env = append(os.Environ(), "TALLY_DOCKER_IMAGE="+p.image, "TALLY_DOCKER_TOKEN_FILE="+tokenFile)
	for i, port := range freeHostPorts(t, 3) {
		p.env = append(p.env, fmt.Sprintf("TALLY_DOCKER_PORT_N%d=%d", i+1, port))
		p.addrs = append(p.addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	return p
}

// freeHostPorts picks n distinct free loopback TCP ports for Docker to
// publish on.
func freeHostPorts(t *testing.T, n int) []int {
	t.Helper()
	addrs, err := freeport.Addrs(n)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, a := range addrs {
		_, port, _ := net.SplitHostPort(a)
		p, err := strconv.Atoi(port)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// run runs a command with the project's environment, bounded by timeout.
func (p *composeProject) run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (p *composeProject) composeRun(timeout time.Duration, args ...string) (string, error) {
	full := append(append(append([]string(nil), p.compose[1:]...), "-p", p.name, "-f", p.file), args...)
	return p.run(timeout, p.compose[0], full...)
}

// buildImage builds a static binary of this tree and an image of it
// tagged for this test alone, removed at the end.
func (p *composeProject) buildImage() {
	p.t.Helper()
	root := filepath.Dir(p.file)
	ctxDir := p.t.TempDir()
	bin := "bin/tally-linux-" + runtime.GOARCH
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctxDir, bin), "./cmd/tally")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		p.t.Fatalf("go build: %v\n%s", err, out)
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), dockerfile, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { _, _ = p.run(time.Minute, "docker", "rmi", "-f", p.image) })
	if _, err := p.run(2*time.Minute, "docker", "build", "-q", "--build-arg", "BIN="+bin, "-t", p.image, ctxDir); err != nil {
		p.t.Fatal(err)
	}
}

// up starts the project on a random free 10.R.S.0/24, trying another
// subnet if Docker finds this one taken.
func (p *composeProject) up() {
	p.t.Helper()
	p.t.Cleanup(p.down)
	base := p.env
	var lastErr error
	for range 3 {
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(rand.IntN(256)), byte(rand.IntN(256)), 0}), 24)
		if clash, err := routeClash(subnet, ""); err != nil {
			p.t.Fatal(err)
		} else if clash != "" {
			continue
		}
		a := subnet.Addr().As4()
		p.env = append(base[:len(base):len(base)], "TALLY_DOCKER_SUBNET="+subnet.String(), fmt.Sprintf("TALLY_DOCKER_NET=%d.%d.%d", a[0], a[1], a[2]))
		_, err := p.composeRun(90*time.Second, "up", "-d")
		if err == nil {
			return
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
		p.down()
	}
	p.t.Fatalf("compose up: %v", lastErr)
}

// down removes the containers, network and volumes, printing the logs
// first if the test failed.
func (p *composeProject) down() {
	if p.t.Failed() {
		if out, err := p.composeRun(30*time.Second, "logs", "--no-color", "--tail", "40"); err == nil {
			p.t.Logf("compose logs:\n%s", out)
		}
	}
	if _, err := p.composeRun(60*time.Second, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
		p.t.Errorf("compose down: %v", err)
	}
}

// kill SIGKILLs node i's container.
func (p *composeProject) kill(i int) {
	p.t.Helper()
	id, err := p.composeRun(30*time.Second, "ps", "-q", fmt.Sprintf("n%d", i+1))
	if err != nil || strings.TrimSpace(id) == "" {
		p.t.Fatalf("container of n%d: %q %v", i+1, id, err)
	}
	if _, err := p.run(30*time.Second, "docker", "kill", strings.TrimSpace(id)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *composeProject) client(addrs ...string) *client.Client {
	p.t.Helper()
	cl, err := client.New(client.Config{Addrs: addrs, Token: p.token, RequestTimeout: 3 * time.Second, RetryFor: 20 * time.Second})
	if err != nil {
		p.t.Fatal(err)
	}
	return cl
}

// waitLeader waits until the three nodes, asked through their published
// ports, name the same leader and it serves a linearizable read.
func (p *composeProject) waitLeader(timeout time.Duration) int {
	p.t.Helper()
	leader := -1
	err := poll(timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		id := ""
		for i, a := range p.addrs {
			st, err := p.quick(a).Status(ctx)
			if err != nil {
				return err
			}
			if st.Leader.ID == "" || (id != "" && st.Leader.ID != id) {
				return fmt.Errorf("n%d names leader %q, others %q", i+1, st.Leader.ID, id)
			}
			id = st.Leader.ID
		}
		if _, err := fmt.Sscanf(id, "n%d", &leader); err != nil || leader < 1 || leader > 3 {
			return fmt.Errorf("leader %q is not n1..n3", id)
		}
		leader--
		_, err := p.quick(p.addrs[leader]).Audit(ctx, 0, 1, client.WithConsistency(api.ConsistencyLinearizable))
		return err
	})
	if err != nil {
		p.t.Fatalf("no agreed leader within %s: %v", timeout, err)
	}
	return leader
}

// quick is a client for one address that tries once.
func (p *composeProject) quick(addr string) *client.Client {
	cl, err := client.New(client.Config{Addrs: []string{addr}, Token: p.token, RequestTimeout: 2 * time.Second, RetryFor: -1})
	if err != nil {
		p.t.Fatal(err)
	}
	return cl
}

var demoLicenseLine = regexp.MustCompile(`demo license: +(\S+)`)

// demo provisions the demo license (cad: 3 seats, one per checkout) as
// docs/operations.md tells: `tally demo` on the host, through the published
// ports. It returns the license key.
func (p *composeProject) demo() string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(p.t), "demo")
	cmd.Env = append(p.env[:len(p.env):len(p.env)], "TALLY_ADDR="+strings.Join(p.addrs, ","), "TALLY_TOKEN="+p.token)
	out, err := cmd.CombinedOutput()
	m := demoLicenseLine.FindSubmatch(out)
	if err != nil || m == nil {
		p.t.Fatalf("tally demo: %v, no demo license line:\n%s", err, out)
	}
	return string(m[1])
}

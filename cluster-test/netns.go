package clustertest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// A netns cluster puts every node in a network namespace of its own, wired
// to one Linux bridge in the root namespace:
//
//	root namespace (the test)        namespace tally-<pid>-<k>-n1
//	  bridge tb<pid>-<k>  10.R.S.1 ── veth ── eth0 10.R.S.11  (n1)
//	                               ── veth ── eth0 10.R.S.12  (n2) ...
//
// Names carry the test process's pid, so a later process can tell the
// leftovers of a dead one (a `go test` killed before its t.Cleanup ran)
// from those of a live one and sweep them. Interface names are at most 15
// bytes: k and the node index are written in base 36.

// Ports every node listens on inside its own namespace.
const (
	netnsHTTPPort   = 7101
	netnsRaftPort   = 7201
	netnsGossipPort = 7301
)

// netnsPrefix starts the name of every namespace we create.
const netnsPrefix = "tally-"

// netnsSeq numbers the netns clusters of this process.
var netnsSeq atomic.Int64

// sweepOnce sweeps the leftovers of dead test processes, once per process.
var sweepOnce sync.Once

// netnsProbe caches NetnsAvailable's answer.
var netnsProbe struct {
	once   sync.Once
	ok     bool
	reason string
}

// NetnsAvailable reports whether WithNetns can work here: we are root, ip,
// iptables and iptables-restore are installed, and a probe namespace can be
// created. When it cannot, reason says why.
func NetnsAvailable() (bool, string) {
	netnsProbe.once.Do(func() {
		netnsProbe.ok, netnsProbe.reason = probeNetns()
	})
	return netnsProbe.ok, netnsProbe.reason
}

func probeNetns() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "network namespaces need root"
	}
	for _, tool := range []string{"ip", "iptables", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, tool + " not found in PATH"
		}
	}
	name := fmt.Sprintf("%s%d-probe", netnsPrefix, os.Getpid())
	if err := run("ip", "netns", "add", name); err != nil {
		return false, "cannot create a network namespace: " + err.Error()
	}
	defer func() { _ = run("ip", "netns", "delete", name) }()
	if err := runIn(name, nil, "iptables", "-S"); err != nil {
		return false, "iptables does not work inside a network namespace: " + err.Error()
	}
	return true, ""
}

// network is the namespaces, veths and bridge of one netns cluster.
type network struct {
	tag     string // tally-<pid>-<k>: the FORWARD rule's comment and the namespaces' prefix
	bridge  string
	subnet  netip.Prefix
	gateway netip.Addr // the bridge's address: where the test's packets come from
	nodes   []netNode

	mu     sync.Mutex // serializes fault changes
	faults faults
}

// netNode is one node's namespace.
type netNode struct {
	ns   string // namespace name
	veth string // root-namespace end of its veth pair; the other end is eth0 inside
	addr netip.Addr
}

// newNetwork builds the namespaces, veths and bridge for n nodes. The
// caller registers teardown with t.Cleanup before calling setup, so even a
// half-built network is removed.
func newNetwork(n int) *network {
	pid, k := os.Getpid(), netnsSeq.Add(1)
	nw := &network{
		tag:    fmt.Sprintf("%s%d-%d", netnsPrefix, pid, k),
		bridge: fmt.Sprintf("tb%d-%s", pid, strconv.FormatInt(k, 36)),
		faults: newFaults(n),
	}
	for i := range n {
		nw.nodes = append(nw.nodes, netNode{
			ns:   fmt.Sprintf("%s-n%d", nw.tag, i+1),
			veth: fmt.Sprintf("tv%d-%s-%s", pid, strconv.FormatInt(k, 36), strconv.FormatInt(int64(i), 36)),
		})
	}
	return nw
}

// setup creates the bridge on a free subnet, its FORWARD rule, and one
// namespace per node.
func (nw *network) setup() error {
	if len(nw.bridge) > 15 || len(nw.nodes[len(nw.nodes)-1].veth) > 15 {
		return fmt.Errorf("interface name %q or %q longer than 15 bytes", nw.bridge, nw.nodes[len(nw.nodes)-1].veth)
	}
	if err := nw.setupBridge(); err != nil {
		return err
	}
	// Docker sets the FORWARD policy to DROP, and with br_netfilter loaded
	// frames crossing a bridge pass FORWARD.
	if err := run("iptables", nw.forwardRule("-I")...); err != nil {
		return err
	}
	for i := range nw.nodes {
		if err := nw.setupNode(i); err != nil {
			return err
		}
	}
	return nil
}

// setupBridge creates the bridge and gives it x.y.z.1 on a random
// 10.R.S.0/24 no route covers, trying again if another process took the
// same subnet at the same moment.
func (nw *network) setupBridge() error {
	if err := run("ip", "link", "add", nw.bridge, "type", "bridge"); err != nil {
		return err
	}
	if err := run("ip", "link", "set", nw.bridge, "up"); err != nil {
		return err
	}
	var lastErr error
	for range 20 {
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(rand.IntN(256)), byte(rand.IntN(256)), 0}), 24)
		if clash, err := routeClash(subnet, ""); err != nil {
			return err
		} else if clash != "" {
			lastErr = fmt.Errorf("subnet %s is routed: %s", subnet, clash)
			continue
		}
		gw := subnet.Addr().Next()
		if err := run("ip", "addr", "add", gw.String()+"/24", "dev", nw.bridge); err != nil {
			return err
		}
		// Another process may have picked the same subnet between our
		// check and our address: look again, now ignoring our own route.
		if clash, err := routeClash(subnet, nw.bridge); err != nil {
			return err
		} else if clash != "" {
			lastErr = fmt.Errorf("subnet %s was taken meanwhile: %s", subnet, clash)
			_ = run("ip", "addr", "del", gw.String()+"/24", "dev", nw.bridge)
			continue
		}
		nw.subnet, nw.gateway = subnet, gw
		addr := gw
		for range 9 {
			addr = addr.Next()
		}
		for i := range nw.nodes {
			addr = addr.Next()
			nw.nodes[i].addr = addr // x.y.z.(10+i+1): n1 is .11
		}
		return nil
	}
	return fmt.Errorf("no free 10.R.S.0/24 subnet: %w", lastErr)
}

// setupNode creates node i's namespace with lo up and a veth pair whose
// inner end is eth0 with the node's address.
func (nw *network) setupNode(i int) error {
	nn := nw.nodes[i]
	steps := [][]string{
		{"netns", "add", nn.ns},
		{"-n", nn.ns, "link", "set", "lo", "up"},
		{"link", "add", nn.veth, "type", "veth", "peer", "name", "eth0", "netns", nn.ns},
		{"link", "set", nn.veth, "master", nw.bridge},
		{"link", "set", nn.veth, "up"},
		{"-n", nn.ns, "addr", "add", nn.addr.String() + "/24", "dev", "eth0"},
		{"-n", nn.ns, "link", "set", "eth0", "up"},
	}
	for _, args := range steps {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// forwardRule is the arguments of `iptables` that insert (-I) or delete
// (-D) the rule letting frames cross our bridge.
func (nw *network) forwardRule(op string) []string {
	return []string{op, "FORWARD", "-i", nw.bridge, "-o", nw.bridge, "-m", "comment", "--comment", nw.tag, "-j", "ACCEPT"}
}

// teardown removes whatever setup built, in any state, and returns every
// failure but "does not exist". The agents must have been killed: a
// namespace lives on while a process runs in it.
func (nw *network) teardown() error {
	var errs []error
	for _, nn := range nw.nodes {
		if err := run("ip", "link", "delete", nn.veth); err != nil && !notFound(err) {
			errs = append(errs, err)
		}
		if err := run("ip", "netns", "delete", nn.ns); err != nil && !notFound(err) {
			errs = append(errs, err)
		}
	}
	if err := run("ip", "link", "delete", nw.bridge); err != nil && !notFound(err) {
		errs = append(errs, err)
	}
	for {
		// -D deletes one copy; there is one unless setup was retried.
		err := run("iptables", nw.forwardRule("-D")...)
		if err != nil {
			if !notFound(err) {
				errs = append(errs, err)
			}
			break
		}
	}
	return errors.Join(errs...)
}

// notFound says whether a failed ip or iptables command failed because the
// thing to delete was not there.
func notFound(err error) bool {
	s := err.Error()
	for _, m := range []string{"Cannot find device", "No such file", "does not exist", "Bad rule", "No chain/target/match"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// Leftovers of other processes are named after their pid.
var (
	staleNetns = regexp.MustCompile(`^` + netnsPrefix + `(\d+)-`)
	staleLink  = regexp.MustCompile(`^t[bv](\d+)-[0-9a-z]+(-[0-9a-z]+)?$`)
	staleRule  = regexp.MustCompile(`--comment "?` + netnsPrefix + `(\d+)-\d+"?`)
)

// sweepStale removes the namespaces, links and FORWARD rules that dead test
// processes left behind. Errors are ignored: a sweep is best effort, and a
// leftover does not stop this cluster from working.
func sweepStale() {
	dead := func(pidStr string) bool {
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			return false
		}
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}
	if out, err := output("ip", "-o", "link", "show"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			// "12: tv123-1-0@if2: <...>"
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if m := staleLink.FindStringSubmatch(name); m != nil && dead(m[1]) {
				_ = run("ip", "link", "delete", name)
			}
		}
	}
	if out, err := output("ip", "netns", "list"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line) // "tally-123-1-n1 (id: 4)"
			if len(f) == 0 {
				continue
			}
			if m := staleNetns.FindStringSubmatch(f[0]); m != nil && dead(m[1]) {
				_ = run("ip", "netns", "delete", f[0])
			}
		}
	}
	if out, err := output("iptables", "-S", "FORWARD"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			m := staleRule.FindStringSubmatch(line)
			if m == nil || !dead(m[1]) || !strings.HasPrefix(line, "-A FORWARD ") {
				continue
			}
			args := strings.Fields(strings.ReplaceAll(strings.TrimPrefix(line, "-A "), `"`, ""))
			_ = run("iptables", append([]string{"-D"}, args...)...)
		}
	}
}

// routeClash returns a route (in any table) whose destination overlaps
// subnet and whose device is not except, or "" if there is none. Default
// routes do not count: every subnet overlaps them.
func routeClash(subnet netip.Prefix, except string) (string, error) {
	out, err := output("ip", "-4", "-o", "route", "show", "table", "all")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		switch dst {
		case "unicast", "local", "broadcast", "multicast", "throw", "unreachable", "prohibit", "blackhole", "nat", "anycast":
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if dst == "default" {
			continue
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil || !p.Overlaps(subnet) {
			continue
		}
		if except != "" && routeDev(f) == except {
			continue
		}
		return strings.TrimSpace(line), nil
	}
	return "", nil
}

func routeDev(fields []string) string {
	for k := 0; k+1 < len(fields); k++ {
		if fields[k] == "dev" {
			return fields[k+1]
		}
	}
	return ""
}

// run runs a command and returns its stderr in the error when it fails.
func run(name string, args ...string) error {
	_, err := output(name, args...)
	return err
}

// output runs a command and returns its stdout.
func output(name string, args ...string) (string, error) {
	return outputIn("", nil, name, args...)
}

// runIn runs a command inside namespace ns with stdin.
func runIn(ns string, stdin []byte, name string, args ...string) error {
	_, err := outputIn(ns, stdin, name, args...)
	return err
}

func outputIn(ns string, stdin []byte, name string, args ...string) (string, error) {
	if ns != "" {
		args = append([]string{"netns", "exec", ns, name}, args...)
		name = "ip"
	}
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// setupNetwork builds the cluster's network or skips the test when this
// machine cannot, and registers its teardown.
func (c *Cluster) setupNetwork(t testing.TB, n int) {
	t.Helper()
	if ok, reason := NetnsAvailable(); !ok {
		t.Skip("WithNetns: " + reason)
	}
	sweepOnce.Do(sweepStale)
	nw := newNetwork(n)
	// Registered before the processes' cleanup, so it runs after it: the
	// agents are dead by the time their namespaces go.
	t.Cleanup(func() {
		if err := nw.teardown(); err != nil {
			t.Errorf("netns teardown: %v", err)
		}
	})
	if err := nw.setup(); err != nil {
		t.Fatalf("netns setup: %v", err)
	}
	c.net = nw
}

// ports are the nodes' addresses: their namespace address with the usual
// ports.
func (nw *network) ports() []nodePorts {
	out := make([]nodePorts, len(nw.nodes))
	for i, nn := range nw.nodes {
		a := nn.addr.String()
		out[i] = nodePorts{
			http:   fmt.Sprintf("%s:%d", a, netnsHTTPPort),
			raft:   fmt.Sprintf("%s:%d", a, netnsRaftPort),
			gossip: fmt.Sprintf("%s:%d", a, netnsGossipPort),
		}
	}
	return out
}

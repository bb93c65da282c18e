package clustertest

import (
	"net/netip"
	"strings"
	"testing"
)

// TestFaultRules checks the iptables-restore input each namespace gets,
// without needing root: every drop happens at the receiver.
func TestFaultRules(t *testing.T) {
	nw := &network{gateway: netip.MustParseAddr("10.9.9.1"), faults: newFaults(3)}
	for i := range 3 {
		nw.nodes = append(nw.nodes, netNode{addr: netip.AddrFrom4([4]byte{10, 9, 9, byte(11 + i)})})
	}
	nw.faults.cut[pair(2, 0)] = true
	nw.faults.loss[1] = 0.3
	nw.faults.noClients[2] = true
	want := map[int][]string{
		0: {"-A INPUT -s 10.9.9.12 -m statistic --mode random --probability 0.30000 -j DROP", "-A INPUT -s 10.9.9.13 -j DROP"},
		1: {"-A INPUT -s 10.9.9.11 -m statistic --mode random --probability 0.30000 -j DROP", "-A INPUT -s 10.9.9.13 -m statistic --mode random --probability 0.30000 -j DROP"},
		2: {"-A INPUT -s 10.9.9.11 -j DROP", "-A INPUT -s 10.9.9.12 -m statistic --mode random --probability 0.30000 -j DROP", "-A INPUT -s 10.9.9.1 -j DROP"},
	}
	for i, rules := range want {
		got := string(nw.rules(i))
		var appended []string
		for _, line := range strings.Split(got, "\n") {
			if strings.HasPrefix(line, "-A ") {
				appended = append(appended, line)
			}
		}
		if strings.Join(appended, "\n") != strings.Join(rules, "\n") || !strings.HasPrefix(got, "*filter\n") || !strings.HasSuffix(got, "COMMIT\n") {
			t.Errorf("node %d rules:\n%s\nwant the rules\n%s", i, got, strings.Join(rules, "\n"))
		}
	}
	nw.faults.loss[2] = 0.5 // compounds with node 1's 0.3 on their link
	if got := string(nw.rules(1)); !strings.Contains(got, "-s 10.9.9.13 -m statistic --mode random --probability 0.65000 -j DROP") {
		t.Errorf("compounded loss missing from node 1's rules:\n%s", got)
	}
}

package clustertest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ErrNoNetwork is returned by the network fault methods of a cluster that
// runs on loopback (without WithNetns): there is no network to cut, and a
// chaos test falls back to Kill, Stop and Pause.
var ErrNoNetwork = errors.New("clustertest: network faults need a WithNetns() cluster")

// faults is the network the test asked for: which node pairs are cut, how
// lossy each node's links to its peers are, and which nodes the test
// process cannot reach. Every change rewrites the filter table of each
// namespace from it, in one iptables-restore, so the rules always say
// exactly this.
type faults struct {
	cut       map[[2]int]bool // {i, j} with i < j
	loss      []float64       // per node: drop probability on its peer links
	noClients []bool          // per node: traffic with the bridge address dropped
}

func newFaults(n int) faults {
	return faults{cut: map[[2]int]bool{}, loss: make([]float64, n), noClients: make([]bool, n)}
}

func pair(i, j int) [2]int {
	if i > j {
		i, j = j, i
	}
	return [2]int{i, j}
}

// rules is node i's filter table in iptables-restore format. Every
// packet is dropped by its receiver, on INPUT in the receiver's namespace:
// a cut pair has a rule at both ends, one per direction, and the sender
// sees silence, as on a real network (a DROP on OUTPUT would fail its
// send at once with EPERM). The root namespace, where the test's clients
// run, is never touched; IsolateFromClients drops the bridge address's
// packets inside the node's namespace.
func (nw *network) rules(i int) []byte {
	f := &nw.faults
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for j, peer := range nw.nodes {
		if j == i {
			continue
		}
		if f.cut[pair(i, j)] {
			fmt.Fprintf(&b, "-A INPUT -s %s -j DROP\n", peer.addr)
			continue
		}
		// Both ends' loss apply to the link, as two lossy NICs would.
		if q := 1 - (1-f.loss[i])*(1-f.loss[j]); q > 0 {
			fmt.Fprintf(&b, "-A INPUT -s %s -m statistic --mode random --probability %.5f -j DROP\n", peer.addr, q)
		}
	}
	if f.noClients[i] {
		fmt.Fprintf(&b, "-A INPUT -s %s -j DROP\n", nw.gateway)
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String())
}

// apply writes the current faults into the given nodes' namespaces, all
// at once.
func (nw *network) apply(nodes ...int) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for k, i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = runIn(nw.nodes[i].ns, nw.rules(i), "iptables-restore")
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (nw *network) all() []int {
	out := make([]int, len(nw.nodes))
	for i := range out {
		out[i] = i
	}
	return out
}

// changeFaults runs change on the fault state under the network's lock
// and then applies the result to every node.
func (c *Cluster) changeFaults(change func(f *faults) error) error {
	if c.net == nil {
		return ErrNoNetwork
	}
	nw := c.net
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if err := change(&nw.faults); err != nil {
		return err
	}
	return nw.apply(nw.all()...)
}

// checkIndex also says ErrNoNetwork first, so that a loopback cluster
// always answers with it.
func (c *Cluster) checkIndex(what string, i int) error {
	if c.net == nil {
		return ErrNoNetwork
	}
	if i < 0 || i >= len(c.nodes) {
		return fmt.Errorf("%s: no node %d (cluster of %d)", what, i, len(c.nodes))
	}
	return nil
}

// Netns reports whether the cluster runs in network namespaces, so that
// the network fault methods work.
func (c *Cluster) Netns() bool { return c.net != nil }

// Partition splits the nodes into groups that cannot exchange a single
// packet with each other; nodes within a group talk as before. Every node
// must be listed exactly once: Partition([]int{0}, []int{1, 2}) isolates
// node 0. Partition replaces every cut made before (by Partition or Cut);
// loss and client isolation stay. Partition with one group reconnects
// every pair.
func (c *Cluster) Partition(groups ...[]int) error {
	if c.net == nil {
		return ErrNoNetwork
	}
	group := make([]int, len(c.nodes))
	for i := range group {
		group[i] = -1
	}
	for g, members := range groups {
		for _, i := range members {
			if err := c.checkIndex("Partition", i); err != nil {
				return err
			}
			if group[i] >= 0 {
				return fmt.Errorf("Partition: node %d is listed twice", i)
			}
			group[i] = g
		}
	}
	for i, g := range group {
		if g < 0 {
			return fmt.Errorf("Partition: node %d is in no group; list every node once", i)
		}
	}
	return c.changeFaults(func(f *faults) error {
		clear(f.cut)
		for i := range group {
			for j := i + 1; j < len(group); j++ {
				if group[i] != group[j] {
					f.cut[pair(i, j)] = true
				}
			}
		}
		return nil
	})
}

// Cut stops every packet between nodes i and j, both ways. With Cut and
// Link any topology can be built: a bridge node that sees both halves, a
// ring in which each node reaches only its neighbours.
func (c *Cluster) Cut(i, j int) error { return c.setCut("Cut", i, j, true) }

// Link undoes Cut(i, j).
func (c *Cluster) Link(i, j int) error { return c.setCut("Link", i, j, false) }

func (c *Cluster) setCut(what string, i, j int, cut bool) error {
	if err := c.checkIndex(what, i); err != nil {
		return err
	}
	if err := c.checkIndex(what, j); err != nil {
		return err
	}
	if i == j {
		return fmt.Errorf("%s(%d, %d): a node cannot be cut from itself", what, i, j)
	}
	return c.changeFaults(func(f *faults) error {
		if cut {
			f.cut[pair(i, j)] = true
		} else {
			delete(f.cut, pair(i, j))
		}
		return nil
	})
}

// Loss drops each packet between node i and each of its peers with
// probability p, in both directions; p = 0 ends it. Losses of two nodes
// compound on the link between them: with Loss(0, 0.3) and Loss(1, 0.3) a
// packet between nodes 0 and 1 is lost with probability 0.51. Traffic with
// the test's clients is not touched, and a cut pair stays cut.
func (c *Cluster) Loss(i int, p float64) error {
	if err := c.checkIndex("Loss", i); err != nil {
		return err
	}
	if p < 0 || p > 1 {
		return fmt.Errorf("Loss(%d, %v): p must be in [0, 1]", i, p)
	}
	return c.changeFaults(func(f *faults) error {
		f.loss[i] = p
		return nil
	})
}

// IsolateFromClients drops every packet between node i and the test
// process (the bridge address), so the node is unreachable for Call,
// Status and the SDK clients while it still talks to its peers. Heal undoes
// it. Note that the harness's own waits (WaitLeader, CheckInvariants) ask
// every live node and so fail while a node is isolated from clients.
func (c *Cluster) IsolateFromClients(i int) error {
	if err := c.checkIndex("IsolateFromClients", i); err != nil {
		return err
	}
	return c.changeFaults(func(f *faults) error {
		f.noClients[i] = true
		return nil
	})
}

// Heal removes every network fault: cuts, loss and client isolation.
func (c *Cluster) Heal() error {
	return c.changeFaults(func(f *faults) error {
		*f = newFaults(len(c.nodes))
		return nil
	})
}

// Partitioned reports whether any pair of nodes is cut.
func (c *Cluster) Partitioned() bool {
	if c.net == nil {
		return false
	}
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	return len(c.net.faults.cut) > 0
}

// NetworkFaults describes the network faults in force, for a test's
// summary: "none", or e.g. "cut n1-n2 n1-n3; loss n2=30%; no clients n3".
func (c *Cluster) NetworkFaults() string {
	if c.net == nil {
		return "none (loopback)"
	}
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	f := &c.net.faults
	var parts, cuts, loss, noClients []string
	for p := range f.cut {
		cuts = append(cuts, c.nodes[p[0]].id+"-"+c.nodes[p[1]].id)
	}
	sort.Strings(cuts)
	for i, p := range f.loss {
		if p > 0 {
			loss = append(loss, fmt.Sprintf("%s=%g%%", c.nodes[i].id, p*100))
		}
		if f.noClients[i] {
			noClients = append(noClients, c.nodes[i].id)
		}
	}
	if len(cuts) > 0 {
		parts = append(parts, "cut "+strings.Join(cuts, " "))
	}
	if len(loss) > 0 {
		parts = append(parts, "loss "+strings.Join(loss, " "))
	}
	if len(noClients) > 0 {
		parts = append(parts, "no clients "+strings.Join(noClients, " "))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

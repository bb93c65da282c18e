package chaos

import (
	"context"
	"fmt"
	"math/rand"
	"time"

	clustertest "github.com/tallyhq/tally/cluster-test"
)

// Fault names, as given to Config.Faults.
const (
	FaultKillLeader    = "kill-leader"     // kill -9 the leader, restart it
	FaultKillRandom    = "kill-random"     // kill -9 any node, restart it
	FaultKillAll       = "kill-all"        // kill -9 every node, restart them all
	FaultPauseLeader   = "pause-leader"    // SIGSTOP the leader past the election timeout
	FaultPauseFollower = "pause-follower"  // SIGSTOP a follower so it falls behind
	FaultTransfer      = "transfer-leader" // hand leadership to another node
	FaultRemoveReadd   = "remove-readd"    // remove a node, wipe it, let it join again
	FaultIsolateLeader = "isolate-leader"  // partition {leader} | rest (netns)
	FaultPartition     = "partition"       // random minority | majority (netns)
	FaultIsolateFollow = "isolate-follower"
	FaultBridge        = "bridge"      // 5 nodes: two halves that only one node links (netns)
	FaultRing          = "ring"        // 5 nodes: each node sees its two neighbours (netns)
	FaultLoss          = "packet-loss" // 30% loss between peers (netns)
)

// ProcessFaults work anywhere; NetworkFaults need network namespaces.
var (
	ProcessFaults  = []string{FaultKillLeader, FaultKillRandom, FaultKillAll, FaultPauseLeader, FaultPauseFollower, FaultTransfer}
	NetworkFaults  = []string{FaultIsolateLeader, FaultPartition, FaultIsolateFollow, FaultLoss}
	FiveNodeFaults = []string{FaultBridge, FaultRing}
)

// FaultEvent is one injected fault, for the report.
type FaultEvent struct {
	Kind          string
	Target        string
	Start, Healed time.Time
}

// nemesis injects one fault at a time into the cluster and heals it. It
// runs in the test goroutine, because the harness may fail the test.
type nemesis struct {
	c      *clustertest.Cluster
	rng    *rand.Rand
	faults []string
	hold   time.Duration // how long a fault lasts
	events []FaultEvent
}

// run injects faults every `every` until ctx ends, each healed before the
// next.
func (n *nemesis) run(ctx context.Context, every time.Duration) {
	if len(n.faults) == 0 {
		<-ctx.Done()
		return
	}
	for {
		sleep(ctx, every/2+time.Duration(n.rng.Int63n(int64(every))))
		if ctx.Err() != nil {
			return
		}
		kind := n.faults[n.rng.Intn(len(n.faults))]
		ev := FaultEvent{Kind: kind, Start: time.Now()}
		ev.Target = n.inject(ctx, kind)
		ev.Healed = time.Now()
		n.events = append(n.events, ev)
	}
}

// holdFor is a fault's duration: at least the election timeout and then
// some, so the cluster has to react.
func (n *nemesis) holdFor() time.Duration {
	return n.hold/2 + time.Duration(n.rng.Int63n(int64(n.hold)))
}

func (n *nemesis) inject(ctx context.Context, kind string) string {
	c := n.c
	switch kind {
	case FaultKillLeader:
		return n.outage(ctx, c.Leader(), c.Kill, c.Restart)
	case FaultKillRandom:
		return n.outage(ctx, n.rng.Intn(c.N()), c.Kill, c.Restart)
	case FaultKillAll:
		for i := 0; i < c.N(); i++ {
			c.Kill(i)
		}
		sleep(ctx, n.holdFor()/2)
		for i := 0; i < c.N(); i++ {
			c.Restart(i)
		}
		return "all"
	case FaultPauseLeader:
		return n.outage(ctx, c.Leader(), c.Pause, c.Resume)
	case FaultPauseFollower:
		return n.outage(ctx, n.follower(), c.Pause, c.Resume)
	case FaultTransfer:
		l := c.Leader()
		if _, err := c.Client(l).TransferLeadership(ctx, ""); err != nil {
			return c.NodeID(l) + " (transfer failed: " + err.Error() + ")"
		}
		return c.NodeID(l)
	case FaultRemoveReadd:
		return n.removeReadd(ctx)
	}
	return n.injectNetwork(ctx, kind)
}

// outage takes node i down with stop, holds, and brings it back with start.
func (n *nemesis) outage(ctx context.Context, i int, stop, start func(int)) string {
	stop(i)
	sleep(ctx, n.holdFor())
	start(i)
	return n.c.NodeID(i)
}

func (n *nemesis) follower() int {
	fs := n.c.Followers()
	return fs[n.rng.Intn(len(fs))]
}

// injectNetwork cuts links; every cut is healed before it returns.
func (n *nemesis) injectNetwork(ctx context.Context, kind string) string {
	c := n.c
	var err error
	target := ""
	switch kind {
	case FaultIsolateLeader:
		l := c.Leader()
		err = c.Partition([]int{l}, others(c.N(), l))
		target = c.NodeID(l)
	case FaultIsolateFollow:
		f := n.follower()
		err = c.Partition([]int{f}, others(c.N(), f))
		target = c.NodeID(f)
	case FaultPartition:
		perm := n.rng.Perm(c.N())
		minority := perm[:(c.N()-1)/2]
		err = c.Partition(minority, perm[len(minority):])
		target = fmt.Sprint(minority)
	case FaultBridge:
		// {0,1} and {3,4} cannot talk; 2 sees everyone.
		for _, a := range []int{0, 1} {
			for _, b := range []int{3, 4} {
				if err == nil {
					err = c.Cut(a, b)
				}
			}
		}
		target = "n3 bridges"
	case FaultRing:
		for i := 0; i < c.N() && err == nil; i++ {
			for j := i + 2; j < c.N() && err == nil; j++ {
				if !(i == 0 && j == c.N()-1) {
					err = c.Cut(i, j)
				}
			}
		}
		target = "ring"
	case FaultLoss:
		for i := 0; i < c.N() && err == nil; i++ {
			err = c.Loss(i, 0.2)
		}
		target = "20% per node"
	default:
		return "unknown fault " + kind
	}
	if err == nil {
		sleep(ctx, n.holdFor())
	}
	if herr := c.Heal(); herr != nil && err == nil {
		err = herr
	}
	if err != nil {
		return target + " (" + err.Error() + ")"
	}
	return target
}

// removeReadd takes a follower out of the Raft configuration, wipes its
// data and lets it join again as a new member.
func (n *nemesis) removeReadd(ctx context.Context) string {
	c := n.c
	f := n.follower()
	id := c.NodeID(f)
	c.Kill(f)
	leader := c.Leader()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		// Refused (409) while gossip still sees the node alive.
		if err = c.Client(leader).RemovePeer(ctx, id); err == nil {
			break
		}
		sleep(ctx, 250*time.Millisecond)
	}
	c.Wipe(f)
	c.StartJoining(f)
	if err != nil {
		return id + " (remove failed: " + err.Error() + ")"
	}
	return id
}

func others(n, not int) []int {
	var out []int
	for i := 0; i < n; i++ {
		if i != not {
			out = append(out, i)
		}
	}
	return out
}

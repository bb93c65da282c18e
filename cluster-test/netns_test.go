package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
	clustertest "github.com/tallyhq/tally/cluster-test"
)

// newNetnsCluster starts n agents in network namespaces, or skips.
func newNetnsCluster(t *testing.T, n int) *clustertest.Cluster {
	t.Helper()
	skipShort(t)
	if ok, reason := clustertest.NetnsAvailable(); !ok {
		t.Skip("network namespaces: " + reason)
	}
	return clustertest.New(t, n, clustertest.WithNetns())
}

// others are the nodes of c other than the given ones.
func others(c *clustertest.Cluster, not ...int) []int {
	var out []int
next:
	for i := range c.N() {
		for _, x := range not {
			if i == x {
				continue next
			}
		}
		out = append(out, i)
	}
	return out
}

// pinnedQuick is an SDK client for node i alone that gives up after one
// attempt of at most timeout.
func pinnedQuick(t *testing.T, c *clustertest.Cluster, i int, timeout time.Duration) *client.Client {
	t.Helper()
	cl, err := client.New(client.Config{Addrs: []string{c.Addr(i)}, Token: c.Token(), RequestTimeout: timeout, RetryFor: -1})
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return cl
}

// TestNetnsPartitionIsolatesLeader cuts the leader off from both
// followers: the majority elects a new leader and takes a checkout, while
// the old leader never answers a linearizable read (it can only fail, not
// answer from its stale state). After Heal the old leader catches up and
// sees the seat.
func TestNetnsPartitionIsolatesLeader(t *testing.T) {
	c := newNetnsCluster(t, 3)
	lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", 3))
	old := c.Leader()
	majority := others(c, old)

	if err := c.Partition([]int{old}, majority); err != nil {
		t.Fatalf("Partition: %v", err)
	}
	if !c.Partitioned() {
		t.Fatalf("Partitioned() = false after Partition")
	}
	t.Logf("partitioned: %s; old leader %s", c.NetworkFaults(), c.NodeID(old))

	// Ask the old leader for linearizable validates until the majority has
	// committed a checkout, and once more after it: no answer may succeed.
	oldClient := pinnedQuick(t, c, old, 2*time.Second)
	failures := map[string]int{} // how the old leader's validates failed
	validateOld := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		v, err := oldClient.Validate(ctx, api.ValidateRequest{LicenseKey: lic.Key, Feature: "cad"}, api.ConsistencyLinearizable)
		if err == nil {
			return fmt.Errorf("the cut-off old leader %s answered a linearizable validate: %+v", c.NodeID(old), v.Seats)
		}
		var ae *api.Error
		if errors.As(err, &ae) {
			failures[ae.Code]++
		} else {
			failures["no answer"]++
		}
		return nil
	}
	stop := make(chan struct{})
	probeErr := make(chan error, 1)
	go func() {
		defer close(probeErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := validateOld(); err != nil {
				probeErr <- err
				return
			}
			time.Sleep(20 * time.Millisecond) // probe cadence
		}
	}()

	newLeader := c.WaitLeaderAmong(majority...)
	if newLeader == old {
		t.Fatalf("the majority names the cut-off node %s as leader", c.NodeID(old))
	}
	lease := mustCheckout(t, c, majority, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: holder(1), RequestID: "during-partition"})
	t.Logf("new leader %s; lease %s taken through the majority", c.NodeID(newLeader), lease.Lease.ID)
	close(stop)
	if err := <-probeErr; err != nil {
		t.Fatal(err)
	}
	if err := validateOld(); err != nil {
		t.Fatal(err)
	}
	t.Logf("linearizable validates through the old leader, all failed: %v", failures)
	if _, err := checkout(c, old, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: holder(2), RequestID: "through-old"}); err == nil {
		t.Fatalf("checkout through the cut-off old leader %s succeeded", c.NodeID(old))
	} else if !transient(err) {
		t.Fatalf("checkout through the cut-off old leader: want a 503 or no answer, got %v", err)
	}

	if err := c.Heal(); err != nil {
		t.Fatalf("Heal: %v", err)
	}
	if c.Partitioned() {
		t.Fatalf("Partitioned() = true after Heal")
	}
	c.WaitLeader()
	clustertest.Eventually(t, 20*time.Second, "the old leader sees the seat taken during the partition", func() error {
		u, err := seats(c, old, lic.Key, "cad", api.ConsistencyLinearizable)
		if err != nil {
			return err
		}
		if u.InUse != 1 {
			return fmt.Errorf("%s says %d seats in use, want 1", c.NodeID(old), u.InUse)
		}
		return nil
	})
	c.WaitApplied(c.MaxCommitIndex())
	c.CheckInvariants(t)
}

// TestNetnsLossyLinks drops 30% of the packets, both ways, on every link
// of the leader: checkouts through the failing-over SDK client still
// succeed, each exactly once. Over such links TCP's retransmission backoff
// often outgrows the election timeout and leadership flaps, at times for
// many seconds; with a second lossy node (half the packets lost on the
// link between the two) the cluster may stay leaderless for longer than
// any client waits.
func TestNetnsLossyLinks(t *testing.T) {
	c := newNetnsCluster(t, 3)
	const (
		n          = 5
		lossBudget = 22 * time.Second
	)
	lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", n+1))
	leader := c.Leader()
	if err := c.Loss(leader, 0.3); err != nil {
		t.Fatalf("Loss(%d, 0.3): %v", leader, err)
	}
	t.Logf("lossy: %s", c.NetworkFaults())
	if c.Partitioned() {
		t.Fatalf("Partitioned() = true with loss only")
	}

	// Leadership may flap for several seconds at a time over such links:
	// the checkouts share one deadline, and each retries until it.
	cl, err := client.New(client.Config{Addrs: c.Addrs(), Token: c.Token(), RetryFor: lossBudget})
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lossBudget)
	defer cancel()
	start := time.Now()
	var slowest time.Duration
	for k := range n {
		began := time.Now()
		lease, err := cl.Checkout(ctx, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: holder(k), RequestID: fmt.Sprintf("lossy-%d", k)})
		if err != nil {
			t.Fatalf("checkout %d over lossy links, %s after the first: %v", k, time.Since(start).Round(time.Millisecond), err)
		}
		if lease.Lease.ID == "" {
			t.Fatalf("checkout %d: answer without a lease id", k)
		}
		slowest = max(slowest, time.Since(began))
	}
	t.Logf("%d checkouts over lossy links in %s, the slowest %s", n, time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond))

	if err := c.Heal(); err != nil {
		t.Fatalf("Heal: %v", err)
	}
	leader = c.WaitLeader()
	u, err := seats(c, leader, lic.Key, "cad", api.ConsistencyLinearizable)
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	if u.InUse != n {
		t.Errorf("%d seats in use after %d checkouts, want %d", u.InUse, n, n)
	}

	// A node cut off from the test process still serves its peers.
	f := others(c, leader)[0]
	if err := c.IsolateFromClients(f); err != nil {
		t.Fatalf("IsolateFromClients: %v", err)
	}
	if _, err := pinnedQuick(t, c, f, time.Second).Status(context.Background()); err == nil {
		t.Fatalf("%s answered the test process after IsolateFromClients", c.NodeID(f))
	}
	mustCheckout(t, c, []int{leader}, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: holder(n), RequestID: "while-isolated"})
	if err := c.Heal(); err != nil {
		t.Fatalf("Heal: %v", err)
	}
	c.WaitApplied(c.MaxCommitIndex())
	c.CheckInvariants(t)
}

// TestNetnsCutOneLink cuts the link between the leader and one follower
// only: the other follower still reaches both, so the cluster keeps a
// quorum and takes checkouts; after Link (and a restart of the follower in
// its namespace) the cut follower catches up.
func TestNetnsCutOneLink(t *testing.T) {
	c := newNetnsCluster(t, 3)
	lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", 5))
	leader := c.Leader()
	cut := others(c, leader)[0]
	if err := c.Cut(leader, cut); err != nil {
		t.Fatalf("Cut: %v", err)
	}
	if !c.Partitioned() {
		t.Fatalf("Partitioned() = false after Cut")
	}
	t.Logf("%s", c.NetworkFaults())
	cl := c.ClientAll()
	for k := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := cl.Checkout(ctx, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: holder(k), RequestID: fmt.Sprintf("cut-%d", k)})
		cancel()
		if err != nil {
			t.Fatalf("checkout %d with %s: %v", k, c.NetworkFaults(), err)
		}
	}
	if err := c.Link(leader, cut); err != nil {
		t.Fatalf("Link: %v", err)
	}
	if c.Partitioned() {
		t.Fatalf("Partitioned() = true after Link")
	}
	// The namespace outlives its node: a restart comes back on it.
	c.Kill(cut)
	c.Restart(cut)
	c.WaitLeader()
	c.WaitApplied(c.MaxCommitIndex())
	c.CheckInvariants(t)
}

// TestNetworkFaultsNeedNetns: on loopback every network fault says
// ErrNoNetwork, so a chaos test can fall back to process faults.
func TestNetworkFaultsNeedNetns(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 1)
	for name, err := range map[string]error{
		"Partition":          c.Partition([]int{0}),
		"Cut":                c.Cut(0, 0),
		"Link":               c.Link(0, 0),
		"Loss":               c.Loss(0, 0.5),
		"IsolateFromClients": c.IsolateFromClients(0),
		"Heal":               c.Heal(),
	} {
		if !errors.Is(err, clustertest.ErrNoNetwork) {
			t.Errorf("%s on loopback: %v, want ErrNoNetwork", name, err)
		}
	}
	if c.Netns() || c.Partitioned() {
		t.Errorf("loopback cluster: Netns() = %v, Partitioned() = %v", c.Netns(), c.Partitioned())
	}
}

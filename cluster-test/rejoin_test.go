package clustertest_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	clustertest "github.com/tallyhq/tally/cluster-test"
)

// TestWipedFollowerRejoins loses a follower's disk: killed, wiped and
// started again without --bootstrap-expect, it joins through --join,
// catches up on what was written while it was gone (by log replay, or by
// a snapshot install when the leader has compacted its log), and holds the
// same state as the others.
func TestWipedFollowerRejoins(t *testing.T) {
	skipShort(t)
	for _, tc := range []struct {
		name     string
		opts     []clustertest.Option
		snapshot bool // the leader must have compacted the log; the node installs a snapshot
	}{
		{name: "log replay"},
		{
			name:     "snapshot install",
			opts:     []clustertest.Option{clustertest.ExtraArgs("--snapshot-threshold", "8", "--trailing-logs", "2", "--snapshot-interval", "200ms")},
			snapshot: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clustertest.New(t, 3, tc.opts...)
			lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", 20))
			f := c.Followers()[0]
			rest := others(c, f)
			mustCheckout(t, c, rest, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: holder(0), RequestID: "before-wipe"})

			c.Kill(f)
			c.Wipe(f)
			const whileWiped = 12
			for k := 1; k <= whileWiped; k++ {
				mustCheckout(t, c, rest, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: holder(k), RequestID: fmt.Sprintf("while-wiped-%d", k)})
			}
			if tc.snapshot {
				// Once the leader has a snapshot it keeps only 2 entries
				// before it: the wiped node cannot be sent the log from 1.
				leader := c.Leader()
				clustertest.Eventually(t, 10*time.Second, "the leader snapshots and compacts its log", func() error {
					return hasSnapshot(c.DataDir(leader))
				})
			}
			c.StartJoining(f)
			c.WaitLeader()
			c.WaitApplied(c.MaxCommitIndex())
			u, err := seats(c, f, lic.Key, "cad", api.ConsistencyStale)
			if err != nil {
				t.Fatalf("validate through the rejoined %s: %v", c.NodeID(f), err)
			}
			if u.InUse != whileWiped+1 {
				t.Errorf("the rejoined %s sees %d seats in use, want %d", c.NodeID(f), u.InUse, whileWiped+1)
			}
			if tc.snapshot {
				if err := hasSnapshot(c.DataDir(f)); err != nil {
					t.Errorf("the rejoined %s: %v", c.NodeID(f), err)
				}
			}
			c.CheckInvariants(t)
		})
	}
}

// hasSnapshot says whether the node with data directory dir holds a Raft
// snapshot (raft's FileSnapshotStore keeps one directory with a meta.json
// per snapshot).
func hasSnapshot(dir string) error {
	metas, err := filepath.Glob(filepath.Join(dir, "raft", "snapshots", "*", "meta.json"))
	if err != nil {
		return err
	}
	if len(metas) == 0 {
		return fmt.Errorf("no snapshot under %s", dir)
	}
	return nil
}

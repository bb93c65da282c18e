package node_test

import (
	"strings"
	"testing"

	"github.com/tallyhq/tally/node"
)

// A second node on a data dir that a running node holds is refused with a
// clear error, instead of waiting for the lock forever.
func TestDataDirInUse(t *testing.T) {
	c := newTestCluster(t, 1)
	cfg := node.DefaultConfig()
	fastConfig(cfg)
	cfg.NodeID, cfg.DataDir = "n1", c.nodes[0].dataDir
	cfg.HTTPAddr, cfg.RaftAddr, cfg.GossipAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	n, err := node.New(cfg)
	if err == nil {
		n.Kill()
		t.Fatal("a second node opened a data dir in use")
	}
	if !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), cfg.DataDir) {
		t.Fatalf("error %q does not say the data dir is in use", err)
	}
	// The refused node touched nothing: the first still serves.
	if _, err := c.nodes[0].n.ReadIndex(t.Context()); err != nil {
		t.Fatalf("the running node after the refusal: %v", err)
	}
}

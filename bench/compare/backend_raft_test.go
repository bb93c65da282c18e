package main

import (
	"testing"
	"time"
)

// The raw raft backend forms a cluster, applies through its leader, and
// every node applies every acknowledged entry.
func TestRaftBackendReplicates(t *testing.T) {
	b, err := newRaftBackend(t.TempDir(), 64)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cell := measure(b, "raft", 4, 300*time.Millisecond)
	if cell.Ops == 0 || len(cell.Errors) != 0 {
		t.Fatalf("ops %d errors %v", cell.Ops, cell.Errors)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range b.nodes {
		for n.fsm.n.Load() < uint64(cell.Ops) {
			if time.Now().After(deadline) {
				t.Fatalf("a node applied %d of %d acknowledged entries", n.fsm.n.Load(), cell.Ops)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

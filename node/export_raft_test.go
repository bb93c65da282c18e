package node

import "github.com/hashicorp/raft"

// RaftLog reads entry idx of this node's Raft log (tests compare the first
// entry, the bootstrap configuration, across nodes).
func (n *Node) RaftLog(idx uint64) (raft.Log, error) {
	var l raft.Log
	err := n.bolt.GetLog(idx, &l)
	return l, err
}

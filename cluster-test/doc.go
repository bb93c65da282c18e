// Package clustertest runs the real `tally` binary as several processes on
// loopback and gives tests a tiny vocabulary to drive them:
//
//	c := clustertest.New(t, 3)          // build once, start 3 agents, wait for a leader
//	c.Leader(), c.Followers()           // node indexes, as every live node agrees
//	c.Kill(i), c.Stop(i), c.Restart(i)  // SIGKILL, SIGTERM, start again on the same data dir
//	c.Pause(i), c.Resume(i)             // SIGSTOP, SIGCONT
//	c.WaitLeader(), c.WaitApplied(idx)  // poll with a deadline, never a bare sleep
//	c.Addr(i), c.Token(), c.Client(i), c.ClientAll()
//	c.CheckInvariants(t)                // DESIGN.md §8: state hash, audit chain, seats
//
// and a few helpers around them: Call (one plain HTTP request to one node,
// for "through node i" assertions), Status, Audit, VerifyAuditChain,
// ProvisionLicense and Eventually (poll a condition with a deadline).
//
// The package holds no tests of its own (those are in cluster_test.go), so
// the chaos suite can reuse the harness.
//
// # The binary
//
// New builds ./cmd/tally once per test process with `go build` into a
// temporary directory; set TALLY_BIN to use a binary built beforehand. Call
// Main from TestMain to remove the build directory when the tests end.
//
// # Nodes
//
// Node i is named n{i+1}. Each gets three free loopback ports (HTTP, Raft,
// gossip), a data directory under t.TempDir(), and a log file that collects
// its stderr across restarts; when a test fails, the tail of every node's
// log is printed. Every node is started with --bootstrap-expect n and
// --join naming every other node's gossip address, so a restarted node finds
// the cluster whichever peers are up. t.Cleanup kills every process, and a
// node that exited without being told to (a panic, a fatal error) fails
// the test.
//
// A node is live when it runs and is not paused. Waits and invariant checks
// look at live nodes only.
package clustertest

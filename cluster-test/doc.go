// Package clustertest runs the real `tally` binary as several processes on
// loopback, or each in a network namespace of its own, and gives tests a
// tiny vocabulary to drive them:
//
//	c := clustertest.New(t, 3)          // build once, start 3 agents, wait for a leader
//	c.Leader(), c.Followers()           // node indexes, as every live node agrees
//	c.Kill(i), c.Stop(i), c.Restart(i)  // SIGKILL, SIGTERM, start again on the same data dir
//	c.Pause(i), c.Resume(i)             // SIGSTOP, SIGCONT
//	c.WaitLeader(), c.WaitApplied(idx)  // poll with a deadline, never a bare sleep
//	c.Addr(i), c.Token(), c.Client(i), c.ClientAll()
//	c.CheckInvariants(t)                // DESIGN.md §8: state hash, audit chain, seats
//	c.Wipe(i), c.StartJoining(i)        // lose a node's disk; bring it back through --join
//	c.WaitLeaderAmong(nodes...)         // the leader of one side of a partition
//
// and, for a cluster made with WithNetns, network faults:
//
//	c.Partition([]int{0}, []int{1, 2})  // groups that cannot exchange a packet
//	c.Cut(i, j), c.Link(i, j)           // one link at a time: any topology
//	c.Loss(i, 0.3)                      // drop 30% of node i's peer packets
//	c.IsolateFromClients(i), c.Heal()   // unreachable for the test; undo everything
//
// and a few helpers around them: Call (one plain HTTP request to one node,
// for "through node i" assertions), Status, Audit, VerifyAuditChain, DataDir,
// ProvisionLicense, Eventually (poll a condition with a deadline) and
// FreeAddrs (ports for a process started outside a Cluster, like tally dev).
//
// The package's tests (cluster_test.go, netns_test.go, rejoin_test.go,
// makerun_test.go for the pieces of make run, ...) are in package
// clustertest_test, so the chaos suite can reuse the harness;
// docker_test.go tests docker-compose.yml and faults_internal_test.go the
// rules the faults write.
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
//
// ExtraArgs passes further flags to every node. StartJoining starts a
// (wiped) node without --bootstrap-expect, so it can only join the running
// cluster; it stays a joiner on later Restarts.
//
// # Network namespaces
//
// With WithNetns every node runs in a network namespace of its own
// (tally-<pid>-<k>-n<i>), started as `ip netns exec NS tally agent ...`,
// which execs the agent in its own place: pid, signals and Pdeathsig work
// as on loopback. Each namespace has lo and an eth0 whose veth peer is
// enslaved to a per-cluster bridge in the root namespace; the bridge has
// 10.R.S.1 on a random /24 no route covers and node i has 10.R.S.(11+i),
// listening on ports 7101 (HTTP), 7201 (Raft) and 7301 (gossip). The test
// process reaches every node through the bridge, so Addr is the namespace
// address. A FORWARD rule in the root namespace accepts frames crossing
// the bridge (Docker sets the FORWARD policy to DROP, and br_netfilter
// sends bridged frames through it). t.Cleanup removes the namespaces,
// veths, bridge and rule even when the test failed, and New sweeps what
// dead test processes left behind (the names carry the owner's pid).
// It needs root, ip and iptables; NetnsAvailable says whether this machine
// has them, and New skips the test when it does not.
//
// Faults are iptables rules inside the namespaces, on INPUT only: the
// receiver drops, so senders see silence, as on a real network, and the
// test's clients in the root namespace still reach every node. Each change
// rewrites every namespace's filter table in one iptables-restore from the
// fault state the cluster keeps, so the rules are always exactly what
// Partition, Cut, Link, Loss and IsolateFromClients asked for. Partition
// takes every node exactly once and replaces earlier cuts; Heal removes
// every fault. On a loopback cluster every fault method returns
// ErrNoNetwork, so a chaos test can fall back to Kill, Stop and Pause.
// Kill, Stop, Restart, Pause, Resume, Wipe and StartJoining work the same
// in both modes; a namespace outlives its node's restarts.
package clustertest

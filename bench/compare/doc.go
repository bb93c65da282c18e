// Command compare measures, on one machine and in one run, three ways of
// doing the same replicated work at several concurrencies:
//
//   - raft: raw hashicorp/raft v1.7.3 applies with raft-boltdb/v2 and a
//     trivial FSM, three nodes in this process over loopback TCP: the
//     ceiling of Tally's stack;
//   - tally: seat checkouts and checkins through HTTP on one hot license of
//     a 3-node `tally agent` cluster;
//   - etcd: the same seat semaphore built on a 3-member etcd cluster the
//     way people build it themselves (a compare-and-swap on a seat counter
//     and a lease per holder).
//
// It lives in its own module so that etcd's dependencies never enter
// Tally's go.mod. run.sh beside it builds everything, starts and stops the
// clusters and prints the table; docs/performance.md explains the choices
// and holds a measured table.
//
// Subcommands:
//
//	compare run -backend raft|tally|etcd [-c 1,16,64,256] [-duration 10s] -out FILE
//	compare report [-json] FILE...
//	compare ports N
package main

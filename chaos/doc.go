// Package chaos is Tally's fault-injection harness and linearizability
// checker: it drives a real cluster with contending clients while a nemesis
// kills, pauses and partitions nodes, records every operation, and checks
// the history with porcupine against a model of a seat pool.
package chaos

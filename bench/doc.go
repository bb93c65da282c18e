// Package bench is the engine of `tally bench`: load scenarios that users
// run against a Tally cluster before production, the latency histogram and
// report they produce, and a throw-away local cluster (`--local 3`) so that
// one command gives the whole picture on a laptop.
//
// The load generator shares the machine with the cluster it measures, so it
// is built to cost little: one shared http.Client with keep-alive, request
// bodies built in per-worker buffers, answers scanned for the one field a
// scenario needs rather than decoded, and latencies counted in a fixed-size
// log-linear histogram (histogram.go) instead of a slice of every sample.
//
// Scenarios never retry a request: a refusal or a transport error is
// counted under its error code, because hiding it behind a retry would hide
// exactly what a benchmark is for. The one exception is failover, whose
// measurement is the time until a retried checkout is accepted.
package bench

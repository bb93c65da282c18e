package bench

import (
	"errors"
	"io"
	"time"
)

// Options tune a run. Zero values take each scenario's default (see
// defaults.go), so one set of flags serves every scenario.
type Options struct {
	// Addrs are the cluster's node addresses, host:port or URLs.
	Addrs []string
	// Token is the admin token bench provisions with.
	Token string
	// Node pins the load to one node: "leader", "follower" or an address.
	// Empty spreads the workers over every address, worker i on Addrs[i%n].
	Node string

	Clients     int           // concurrent workers
	Duration    time.Duration // how long the load runs
	Licenses    int           // checkout-storm: licenses to spread over; provision-surge: licenses to create
	Seats       int           // seats per license (checkout-storm)
	Desktops    int           // desktops: simulated desktops
	Interval    time.Duration // desktops: heartbeat interval
	Leases      int           // expiry-storm: leases left to expire at once
	TTL         time.Duration // expiry-storm: their lease TTL
	Policies    int           // provision-surge: extra policies created alongside
	Consistency string        // validate: stale or linearizable
	Trials      int           // failover: kills
	// Timeout bounds one request (default 10s).
	Timeout time.Duration

	// Local is the cluster bench started itself (--local); failover needs it.
	Local *LocalCluster
	// Progress receives the live progress line; nil for none. TTY redraws
	// it in place.
	Progress io.Writer
	TTY      bool
	// Log receives what bench tells the user besides the report: what it
	// provisioned, which node it chose. nil discards it.
	Log io.Writer
	// short makes zero values take the short defaults of `tally bench all`.
	short bool
}

// ErrNeedsLocal is returned by failover on a cluster bench did not start:
// it kills nodes, and only its own may be killed.
var ErrNeedsLocal = errors.New("failover kills the leader, so it runs only on a cluster bench started itself (--local 3)")

// orDefault returns v unless it is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// pick chooses between a scenario's normal and short default.
func (o *Options) pick(normal, short int) int {
	if o.short {
		return short
	}
	return normal
}

func (o *Options) pickDur(normal, short time.Duration) time.Duration {
	if o.short {
		return short
	}
	return normal
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// scenario is one kind of load.
type scenario struct {
	name  string
	short string
	run   func(ctx context.Context, e *env) (*Report, error)
}

var scenarios = []scenario{
	{"checkout-storm", "clients check seats out and in on one hot license (or --licenses N)", checkoutStorm},
	{"desktops", "simulated desktops hold seats and heartbeat; heartbeat latency and leader CPU", desktops},
	{"validate", "validations against one node (--node, default a follower), stale or linearizable", validate},
	{"expiry-storm", "many leases expire at once while checkouts go on; time until free, checkout p99", expiryStorm},
	{"provision-surge", "create licenses and policies as fast as the cluster takes them, then one policy PATCH", provisionSurge},
	{"failover", "kill -9 the leader, time until a checkout through a survivor is accepted (--local only)", failover},
}

// Scenarios lists the scenario names with one line each, for help texts.
func Scenarios() [][2]string {
	out := make([][2]string, len(scenarios))
	for i, s := range scenarios {
		out[i] = [2]string{s.name, s.short}
	}
	return out
}

// Known says whether name is a scenario or "all".
func Known(name string) bool {
	if name == "all" {
		return true
	}
	for _, s := range scenarios {
		if s.name == name {
			return true
		}
	}
	return false
}

// Run runs one scenario, or with "all" a short version of each (failover
// only on a local cluster), and returns their reports. In "all" a failed
// scenario does not stop the others; its error is returned with theirs.
func Run(ctx context.Context, name string, opts Options) ([]*Report, error) {
	if !Known(name) {
		return nil, fmt.Errorf("unknown scenario %q (one of %s, all)", name, strings.Join(names(), ", "))
	}
	if name == "failover" && opts.Local == nil {
		return nil, ErrNeedsLocal
	}
	if name == "all" {
		opts.short = true
	}
	e, err := newEnv(opts)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if name != "all" {
		for _, s := range scenarios {
			if s.name == name {
				r, err := s.run(ctx, e)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				return []*Report{r}, nil
			}
		}
	}
	var (
		reports []*Report
		errs    []error
	)
	for _, s := range allRuns(opts) {
		if ctx.Err() != nil {
			break
		}
		e.opts = s.opts
		r, err := s.run(ctx, e)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			continue
		}
		reports = append(reports, r)
	}
	return reports, errors.Join(errs...)
}

// plannedRun is one scenario of `tally bench all` with its options.
type plannedRun struct {
	scenario
	opts Options
}

// allRuns is `tally bench all`: every scenario once, validate both stale
// and linearizable, failover only where bench owns the cluster.
func allRuns(opts Options) []plannedRun {
	var out []plannedRun
	for _, s := range scenarios {
		switch {
		case s.name == "failover" && opts.Local == nil:
			continue
		case s.name == "validate" && opts.Consistency == "":
			stale, lin := opts, opts
			stale.Consistency, lin.Consistency = "stale", "linearizable"
			out = append(out, plannedRun{s, stale}, plannedRun{s, lin})
		default:
			out = append(out, plannedRun{s, opts})
		}
	}
	return out
}

func names() []string {
	out := make([]string, len(scenarios))
	for i, s := range scenarios {
		out[i] = s.name
	}
	return out
}

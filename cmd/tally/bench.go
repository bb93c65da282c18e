package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/bench"
)

// benchFlags are the flags of `tally bench`; zero means the scenario's
// default (docs/bench.md lists them).
type benchFlags struct {
	opts        bench.Options
	consistency *enumValue
	local       int
	profile     string
}

func benchCmd(a *app) *cobra.Command {
	var f benchFlags
	var list strings.Builder
	for _, s := range bench.Scenarios() {
		fmt.Fprintf(&list, "  %-16s %s\n", s[0], s[1])
	}
	cmd := &cobra.Command{
		Use:   "bench [SCENARIO]",
		Short: "Load a cluster and report throughput and latency",
		Long: `Run a load scenario against a cluster and report throughput, p50/p99/p99.9
latency, errors by code and a latency histogram (--json for machines). A
progress line on stderr shows ops/s, errors and elapsed time as it runs.

Scenarios:
` + list.String() + `  all              a short version of each

Against an existing cluster (--addr, --token) bench provisions its own
product, policies and licenses, all named bench-<time>-<random>, and says so
on stderr; the API has no delete, so they stay. With --local 3 it starts its
own 3-node cluster on loopback from this binary, runs the scenario (all when
none is named) and stops it. Flags left at 0 take each scenario's default.`,
		Example: `  tally bench --local 3
  tally bench checkout-storm --local 3 --clients 64 --duration 10s
  tally bench validate --node follower --consistency stale --clients 64
  tally bench failover --local 3 --trials 5 --raft-profile lan --json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return runBench(cmd, a, &f, argv)
		},
	}
	fl := cmd.Flags()
	o := &f.opts
	fl.IntVar(&o.Clients, "clients", 0, "concurrent clients")
	fl.DurationVar(&o.Duration, "duration", 0, "how long the load runs")
	fl.IntVar(&o.Licenses, "licenses", 0, "checkout-storm, desktops: licenses to spread over; provision-surge: licenses to create")
	fl.IntVar(&o.Seats, "seats", 0, "checkout-storm: seats per license (default clients/licenses)")
	fl.IntVar(&o.Desktops, "desktops", 0, "desktops: simulated desktops holding seats")
	fl.DurationVar(&o.Interval, "interval", 0, "desktops: heartbeat interval of each desktop (default 1s)")
	fl.IntVar(&o.Leases, "leases", 0, "expiry-storm: leases that expire at once")
	fl.DurationVar(&o.TTL, "ttl", 0, "expiry-storm: their lease TTL, whole seconds (default 2s)")
	fl.IntVar(&o.Policies, "policies", 0, "provision-surge: extra policies created during the surge")
	f.consistency = consistencyFlag(cmd, "validate: stale (default) or linearizable")
	fl.IntVar(&o.Trials, "trials", 0, "failover: leader kills (default 5)")
	fl.StringVar(&o.Node, "node", "", "send the load to one node: leader, follower or host:port (default: spread over --addr; validate: follower)")
	fl.DurationVar(&o.Timeout, "timeout", 10*time.Second, "timeout of one request")
	fl.IntVar(&f.local, "local", 0, "start a local cluster of this many nodes (1, 3 or 5) on loopback for the run")
	fl.StringVar(&f.profile, "raft-profile", "default", "--local: raft timings of the nodes, default or lan")
	return cmd
}

func runBench(cmd *cobra.Command, a *app, f *benchFlags, argv []string) error {
	name := "all"
	if len(argv) == 1 {
		name = argv[0]
	} else if f.local == 0 {
		return usagef("name a scenario, or give --local 3 to run all of them on a local cluster")
	}
	if !bench.Known(name) {
		return usagef("unknown scenario %q; see tally bench --help", name)
	}
	if f.local != 0 && f.local != 1 && f.local != 3 && f.local != 5 {
		return usagef("--local takes 1, 3 or 5 nodes, not %d", f.local)
	}
	if f.profile != "default" && f.profile != "lan" {
		return usagef("--raft-profile must be default or lan, not %q", f.profile)
	}
	for flag, v := range map[string]int{"clients": f.opts.Clients, "licenses": f.opts.Licenses, "seats": f.opts.Seats,
		"desktops": f.opts.Desktops, "leases": f.opts.Leases, "policies": f.opts.Policies, "trials": f.opts.Trials, "local": f.local} {
		if v < 0 {
			return usagef("--%s must not be negative", flag)
		}
	}
	if f.opts.TTL != 0 && f.opts.TTL < time.Second {
		return usagef("--ttl must be at least 1s, got %s", f.opts.TTL)
	}
	opts := f.opts
	opts.Consistency = f.consistency.value
	opts.Progress, opts.TTY, opts.Log = a.stderr, isTerminal(a.stderr), a.stderr
	ctx := cmd.Context()
	if f.local > 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("--local needs this binary's path: %w", err)
		}
		fmt.Fprintf(a.stderr, "bench: starting a local %d-node cluster...\n", f.local)
		lc, err := bench.StartLocal(ctx, bench.LocalConfig{Binary: exe, Nodes: f.local, RaftProfile: f.profile})
		if err != nil {
			return err
		}
		defer func() {
			if err := lc.Stop(); err != nil {
				fmt.Fprintln(a.stderr, "bench: stopping the local cluster:", err)
			}
		}()
		fmt.Fprintf(a.stderr, "bench: local cluster up at %s (data and logs in %s, removed at the end)\n", strings.Join(lc.Addrs(), ","), lc.Dir())
		opts.Addrs, opts.Token, opts.Local = lc.Addrs(), lc.Token(), lc
	} else {
		if name == "failover" {
			return usageErr(bench.ErrNeedsLocal)
		}
		if a.token == "" {
			return usagef("bench provisions its own licenses: give the admin token with --token or TALLY_TOKEN (or use --local 3)")
		}
		opts.Addrs, opts.Token = splitAddrs(a.addr), a.token
	}
	reports, err := bench.Run(ctx, name, opts)
	if a.json && len(reports) > 0 {
		if werr := bench.WriteJSON(a.stdout, reports...); werr != nil {
			return werr
		}
	} else {
		for i, r := range reports {
			if i > 0 {
				fmt.Fprintln(a.stdout)
			}
			if werr := r.WriteText(a.stdout); werr != nil {
				return werr
			}
		}
	}
	return err
}

// isTerminal says whether w is a terminal, where the progress line is
// redrawn in place.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// addBenchCommand adds `tally bench` to the cluster commands.
func addBenchCommand(root *cobra.Command, a *app) {
	c := benchCmd(a)
	c.GroupID = "cluster"
	root.AddCommand(c)
}

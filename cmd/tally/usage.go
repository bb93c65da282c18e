package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/api"
)

// addUsageCommands adds `tally usage` and `tally license update` (the
// per-license overrides). It runs after addLicenseCommands, whose group it
// extends.
func addUsageCommands(root *cobra.Command, a *app) {
	usage := usageCmd(a)
	usage.GroupID = "admin"
	root.AddCommand(usage)
	for _, c := range root.Commands() {
		if c.Name() == "license" {
			c.AddCommand(licenseUpdateCmd(a))
		}
	}
}

// usageReport is what `tally usage --json` prints: the same shape for one
// license or all of them.
type usageReport struct {
	Licenses []licenseUsage `json:"licenses"`
}

type licenseUsage struct {
	LicenseID string                      `json:"license_id"`
	Customer  string                      `json:"customer"`
	Seats     map[string]api.SeatUsage    `json:"seats"`
	Usage     map[string]api.FeatureUsage `json:"usage"`
}

func usageCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "usage [LICENSE_ID]",
		Short: "Show checkout counters per license and feature",
		Long: `Show, per license and feature, the seats in use now and the usage counters:
checkouts granted, checkouts denied (any refusal: no seats, suspended,
expired, ...), and the most seats ever in use at once with when that peak
was first reached. Without LICENSE_ID, every license. The counters are
replicated state, the same on every node, counted since the cluster first
ran a release that keeps them.`,
		Example: `  tally usage
  tally usage lic_1 --json`,
		Args: args(cobra.MaximumNArgs(1)),
	}
	consistency := consistencyFlag(cmd, "stale or linearizable (default)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		var licenses []api.License
		if len(argv) == 1 {
			l, err := c.License(cmd.Context(), argv[0], readOpts(consistency)...)
			if err != nil {
				return err
			}
			licenses = []api.License{*l}
		} else {
			list, err := c.Licenses(cmd.Context(), readOpts(consistency)...)
			if err != nil {
				return err
			}
			licenses = list.Licenses
		}
		report := usageReport{Licenses: make([]licenseUsage, 0, len(licenses))}
		for _, l := range licenses {
			report.Licenses = append(report.Licenses, licenseUsage{LicenseID: l.ID, Customer: l.Customer, Seats: l.Seats, Usage: l.Usage})
		}
		return a.emit(report, func(w io.Writer) { printUsage(w, report) })
	}
	return cmd
}

func printUsage(w io.Writer, r usageReport) {
	row(w, "LICENSE", "CUSTOMER", "FEATURE", "IN_USE", "GRANTED", "DENIED", "PEAK", "PEAK_AT")
	for _, l := range r.Licenses {
		features := sortedKeys(l.Usage)
		for _, name := range sortedKeys(l.Seats) {
			if _, ok := l.Usage[name]; !ok {
				features = append(features, name)
			}
		}
		for _, name := range features {
			u, s := l.Usage[name], l.Seats[name]
			inUse := "-"
			if _, ok := l.Seats[name]; ok {
				inUse = fmtSeatCount(s)
			}
			peakAt := "-"
			if u.PeakAt != nil {
				peakAt = fmtTime(*u.PeakAt)
			}
			row(w, l.LicenseID, l.Customer, name, inUse, u.Granted, u.Denied, u.PeakInUse, peakAt)
		}
	}
}

// fmtSeatCount writes "1/3", or "2/-" for a feature not counted.
func fmtSeatCount(s api.SeatUsage) string {
	total := "-"
	if s.Total >= 0 {
		total = strconv.Itoa(s.Total)
	}
	return fmt.Sprintf("%d/%s", s.InUse, total)
}

func licenseUpdateCmd(a *app) *cobra.Command {
	var seats seatOverrides
	var ttl time.Duration
	var clear bool
	cmd := &cobra.Command{
		Use:   "update ID [--seats FEATURE=N]... [--lease-ttl D] | --clear",
		Short: "Set this license's own seat counts or lease TTL (overrides)",
		Long: `Give one license its own seat count for some features (a customer bought two
extra seats) or its own lease TTL, in place of its policy's. The overrides
given replace the license's previous ones as a whole; --clear removes them,
so the policy governs again. -1 seats means entitled but not counted. The
policy still governs everything not overridden, and its changes still reach
the license. Lowering seats below those in use ends no lease; new seats are
refused until use falls under the limit.`,
		Example: `  tally license update lic_1 --seats cad=5
  tally license update lic_1 --seats cad=5 --seats viewer=-1 --lease-ttl 2m
  tally license update lic_1 --clear`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if clear == (len(seats.m) > 0 || ttl != 0) {
				return usagef("give --seats and/or --lease-ttl, or --clear")
			}
			o, err := overridesOf(seats, ttl)
			if err != nil {
				return err
			}
			if o == nil {
				o = &api.LicenseOverrides{} // --clear
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.UpdateLicense(cmd.Context(), argv[0], api.UpdateLicenseRequest{Overrides: o})
			if err != nil {
				return err
			}
			return a.emit(l, func(w io.Writer) {
				fmt.Fprintf(w, "Updated license %s: overrides %s\n", l.ID, fmtOverrides(l.Overrides))
			})
		},
	}
	f := cmd.Flags()
	f.Var(&seats, "seats", "this license's seats of a feature, FEATURE=N (-1: not counted); repeat or comma-separate")
	f.DurationVar(&ttl, "lease-ttl", 0, "this license's lease TTL, e.g. 2m")
	f.BoolVar(&clear, "clear", false, "remove every override")
	return cmd
}

// overridesOf builds a license's overrides from --seats and --lease-ttl;
// nil when neither is given.
func overridesOf(seats seatOverrides, ttl time.Duration) (*api.LicenseOverrides, error) {
	if len(seats.m) == 0 && ttl == 0 {
		return nil, nil
	}
	o := &api.LicenseOverrides{Seats: seats.m}
	if ttl != 0 {
		secs, err := ttlSeconds("lease-ttl", ttl)
		if err != nil {
			return nil, err
		}
		o.LeaseTTLSeconds = secs
	}
	return o, nil
}

// fmtOverrides writes overrides as "cad=5, viewer=-1, lease_ttl=2m0s", or
// "none".
func fmtOverrides(o *api.LicenseOverrides) string {
	if o == nil {
		return "none"
	}
	var parts []string
	for _, name := range sortedKeys(o.Seats) {
		parts = append(parts, name+"="+strconv.Itoa(o.Seats[name]))
	}
	if o.LeaseTTLSeconds > 0 {
		parts = append(parts, "lease_ttl="+(time.Duration(o.LeaseTTLSeconds)*time.Second).String())
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// seatOverrides is the repeatable --seats FEATURE=N flag.
type seatOverrides struct{ m map[string]int }

func (s *seatOverrides) Type() string { return "FEATURE=N" }

func (s *seatOverrides) String() string {
	if len(s.m) == 0 {
		return ""
	}
	return fmtOverrides(&api.LicenseOverrides{Seats: s.m})
}

func (s *seatOverrides) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		name, seats, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		n, err := strconv.Atoi(strings.TrimSpace(seats))
		if !ok || name == "" || err != nil || n < -1 {
			return fmt.Errorf("want FEATURE=N with N >= -1, got %q", part)
		}
		if s.m == nil {
			s.m = map[string]int{}
		}
		s.m[name] = n
	}
	return nil
}

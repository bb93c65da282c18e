package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
)

// addLicenseCommands adds license, lease and audit.
func addLicenseCommands(root *cobra.Command, a *app) {
	license := group("license", "Issue, list and change licenses",
		`A license grants a customer the features of its policy. Desktops use its key
to check seats out.`)
	license.AddCommand(licenseCreateCmd(a), licenseListCmd(a), licenseShowCmd(a),
		licenseActionCmd(a, "suspend", "Suspend a license: no new seats, heartbeats refused, until reinstated",
			(*client.Client).SuspendLicense),
		licenseActionCmd(a, "reinstate", "Make a suspended license active again",
			(*client.Client).ReinstateLicense),
		licenseActionCmd(a, "revoke", "Revoke a license for good",
			(*client.Client).RevokeLicense))

	lease := group("lease", "List and revoke live leases",
		"A lease is one checked-out seat, kept alive by its holder's heartbeats.")
	lease.AddCommand(leaseListCmd(a), leaseRevokeCmd(a))

	audit := group("audit", "Read the audit log",
		`Every license event (provision, change, checkout, deny, checkin, expire,
revoke) is an audit record, hash-chained and replicated on every node.`)
	audit.AddCommand(auditListCmd(a), auditVerifyCmd(a), auditExportCmd(a))

	for _, c := range []*cobra.Command{license, lease, audit} {
		c.GroupID = "admin"
		root.AddCommand(c)
	}
}

func licenseCreateCmd(a *app) *cobra.Command {
	var policy, customer string
	var expires expiresValue
	var meta metaValue
	var seats seatOverrides
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create --policy ID --customer NAME",
		Short: "Issue a license and print its key",
		Long: `Issue a license on a policy for a customer and print the license key, which
the customer's desktops use to check seats out. --expires takes an RFC 3339
time or a date (midnight UTC); without it the license expires after its
policy's duration, if the policy has one, and otherwise never. --seats and
--lease-ttl give this license its own seat counts or lease TTL in place of
the policy's (see license update).`,
		Example: `  tally license create --policy pol_1 --customer "Acme Corp" \
    --expires 2027-01-31 --meta contract=C-1042 --meta region=eu
  tally license create --policy pol_1 --customer "Beta Ltd" --seats cad=5`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := overridesOf(seats, ttl)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.CreateLicense(cmd.Context(), api.CreateLicenseRequest{
				PolicyID: policy, Customer: customer, ExpiresAt: expires.t, Metadata: meta.m, Overrides: o,
			})
			if err != nil {
				return err
			}
			return a.emit(l, func(w io.Writer) {
				fmt.Fprintf(w, "Created license %s for %s (policy %s, expires %s)\n\n", l.ID, l.Customer, l.PolicyID, fmtTimePtr(l.ExpiresAt))
				fmt.Fprintf(w, "    License key:  %s\n\n", l.Key)
				fmt.Fprintln(w, "Give this key to the customer; desktops use it to check seats out.")
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&policy, "policy", "", "policy id (required)")
	f.StringVar(&customer, "customer", "", "customer name (required)")
	f.Var(&expires, "expires", "expiry, RFC 3339 or YYYY-MM-DD (default: never)")
	f.Var(&meta, "meta", "metadata key=value; repeat for more")
	f.Var(&seats, "seats", "this license's seats of a feature, FEATURE=N (-1: not counted); repeat or comma-separate")
	f.DurationVar(&ttl, "lease-ttl", 0, "this license's lease TTL, e.g. 2m (default: the policy's)")
	_ = cmd.MarkFlagRequired("policy")
	_ = cmd.MarkFlagRequired("customer")
	return cmd
}

func licenseListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{
		Use:     "list",
		Short:   "List licenses with their live seat usage",
		Example: `  tally license list`,
		Args:    args(cobra.NoArgs),
	},
		(*client.Client).Licenses,
		func(w io.Writer, list *api.LicenseList) {
			row(w, "ID", "CUSTOMER", "POLICY", "STATUS", "EXPIRES", "SEATS")
			for _, l := range list.Licenses {
				row(w, l.ID, l.Customer, l.PolicyID, licenseStatus(&l, time.Now()), fmtTimePtr(l.ExpiresAt), fmtSeats(l.Seats))
			}
		})
}

func printLicense(w io.Writer, l *api.License) {
	row(w, "id", l.ID)
	if l.Key != "" {
		row(w, "key", l.Key)
	}
	row(w, "customer", l.Customer)
	row(w, "policy", l.PolicyID)
	row(w, "product", l.ProductID)
	row(w, "status", licenseStatus(l, time.Now()))
	row(w, "expires_at", fmtTimePtr(l.ExpiresAt))
	row(w, "created_at", fmtTime(l.CreatedAt))
	row(w, "seats", fmtSeats(l.Seats))
	if l.Overrides != nil {
		row(w, "overrides", fmtOverrides(l.Overrides))
	}
	for _, k := range sortedKeys(l.Metadata) {
		row(w, "meta."+k, l.Metadata[k])
	}
}

// licenseStatus is the status shown to people. The server keeps an expired
// license's status as it was (active) and refuses it by its expires_at, as
// validate's license_expired says; an active license past its expiry is
// shown as "expired" so a list does not call it usable. --json keeps the
// API's status.
func licenseStatus(l *api.License, now time.Time) string {
	if l.Status == api.StatusActive && l.ExpiresAt != nil && !now.Before(*l.ExpiresAt) {
		return "expired"
	}
	return l.Status
}

func licenseShowCmd(a *app) *cobra.Command {
	return showCmd(a, "Show one license with its live seat usage", `  tally license show lic_1`, (*client.Client).License, printLicense)
}

// licenseActionCmd builds suspend, reinstate and revoke.
func licenseActionCmd(a *app, verb, short string, do func(*client.Client, context.Context, string) (*api.License, error)) *cobra.Command {
	past := map[string]string{"suspend": "Suspended", "reinstate": "Reinstated", "revoke": "Revoked"}[verb]
	return &cobra.Command{
		Use:     verb + " ID",
		Short:   short,
		Example: "  tally license " + verb + " lic_1",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := do(c, cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			return a.emit(l, func(w io.Writer) {
				fmt.Fprintf(w, "%s license %s (status %s)\n", past, l.ID, licenseStatus(l, time.Now()))
			})
		},
	}
}

func leaseListCmd(a *app) *cobra.Command {
	var license string
	cmd := &cobra.Command{
		Use:   "list [--license ID]",
		Short: "List live leases",
		Example: `  tally lease list
  tally lease list --license lic_1`,
		Args: args(cobra.NoArgs),
	}
	consistency := consistencyFlag(cmd, "stale or linearizable (default)")
	cmd.Flags().StringVar(&license, "license", "", "only the leases of this license")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		list, err := c.Leases(cmd.Context(), license, readOpts(consistency)...)
		if err != nil {
			return err
		}
		return a.emit(list, func(w io.Writer) {
			row(w, "ID", "LICENSE", "FEATURE", "MACHINE", "USER", "ISSUED", "EXPIRES")
			for _, l := range list.Leases {
				row(w, l.ID, l.LicenseID, l.Feature, l.Holder.Machine, l.Holder.User, fmtTime(l.IssuedAt), fmtTime(l.ExpiresAt))
			}
		})
	}
	return cmd
}

func leaseRevokeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Force-release a lease",
		Long: `Revoke a lease: its seat is free at once and the holder's next heartbeat
gets lease_expired, so a well-behaved client stops instead of retaking it.`,
		Example: `  tally lease revoke lease_1`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RevokeLease(cmd.Context(), argv[0]); err != nil {
				return err
			}
			return a.emit(emptyObject{}, func(w io.Writer) { fmt.Fprintf(w, "Revoked lease %s\n", argv[0]) })
		},
	}
}

func auditListCmd(a *app) *cobra.Command {
	var after uint64
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--after N] [--limit N]",
		Short: "List audit records in order",
		Long: `List audit records with an index greater than --after, oldest first. To page
through the log, pass the last index printed as the next --after.`,
		Example: `  tally audit list --limit 20
  tally audit list --after 120 --json`,
		Args: args(cobra.NoArgs),
	}
	consistency := consistencyFlag(cmd, "stale or linearizable (default)")
	cmd.Flags().Uint64Var(&after, "after", 0, "only records with an index greater than this")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many records (0: the server's default)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if limit < 0 {
			return usagef("--limit must be >= 0")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		list, err := c.Audit(cmd.Context(), after, limit, readOpts(consistency)...)
		if err != nil {
			return err
		}
		return a.emit(list, func(w io.Writer) {
			row(w, "INDEX", "TIME", "TYPE", "LICENSE", "LEASE", "FEATURE", "DETAIL")
			for _, r := range list.Records {
				row(w, r.Index, fmtTime(r.Time), r.Type, r.LicenseID, r.LeaseID, r.Feature, r.Detail)
			}
		})
	}
	return cmd
}

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

// addAdminCommands adds product and policy; license.go adds the rest.
func addAdminCommands(root *cobra.Command, a *app) {
	product := group("product", "Create, list and show products",
		"A product is something that is licensed; policies hang off a product.")
	product.AddCommand(productCreateCmd(a), productListCmd(a), productShowCmd(a))

	policy := group("policy", "Create, list, show and change policies",
		`A policy is the shared configuration of every license issued on it: its
features with their seat counts, the lease TTL, the seat counting rule and the
borrow limit. Changing a policy changes every license on it at once.`)
	policy.AddCommand(policyCreateCmd(a), policyListCmd(a), policyShowCmd(a), policyUpdateCmd(a))

	for _, c := range []*cobra.Command{product, policy} {
		c.GroupID = "admin"
		root.AddCommand(c)
	}
}

func productCreateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a product",
		Long:    "Create a product and print its id, which policies refer to.",
		Example: `  tally product create "Acme CAD"`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.CreateProduct(cmd.Context(), api.CreateProductRequest{Name: argv[0]})
			if err != nil {
				return err
			}
			return a.emit(p, func(w io.Writer) { fmt.Fprintf(w, "Created product %s (%s)\n", p.ID, p.Name) })
		},
	}
}

func productListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{
		Use:     "list",
		Short:   "List products",
		Example: `  tally product list`,
		Args:    args(cobra.NoArgs),
	},
		(*client.Client).Products,
		func(w io.Writer, list *api.ProductList) {
			row(w, "ID", "NAME", "CREATED")
			for _, p := range list.Products {
				row(w, p.ID, p.Name, fmtTime(p.CreatedAt))
			}
		})
}

func productShowCmd(a *app) *cobra.Command {
	return showCmd(a, "Show one product", `  tally product show prd_1`, (*client.Client).Product,
		func(w io.Writer, p *api.Product) {
			row(w, "id", p.ID)
			row(w, "name", p.Name)
			row(w, "created", fmtTime(p.CreatedAt))
		})
}

// showCmd builds a `show ID` command: one read by id, printed as rows for
// people or as the API object with --json.
func showCmd[T any](a *app, short, example string,
	get func(*client.Client, context.Context, string, ...client.ReadOption) (*T, error),
	print func(io.Writer, *T)) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "show ID",
		Short:   short,
		Example: example,
		Args:    args(cobra.ExactArgs(1)),
	}
	consistency := consistencyFlag(cmd, "stale or linearizable (default)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		v, err := get(c, cmd.Context(), argv[0], readOpts(consistency)...)
		if err != nil {
			return err
		}
		return a.emit(v, func(w io.Writer) { print(w, v) })
	}
	return cmd
}

// listCmd completes cmd into a list command: one read, printed as a table
// for people or as the API object with --json.
func listCmd[T any](a *app, cmd *cobra.Command,
	list func(*client.Client, context.Context, ...client.ReadOption) (*T, error),
	print func(io.Writer, *T)) *cobra.Command {
	consistency := consistencyFlag(cmd, "stale or linearizable (default)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		v, err := list(c, cmd.Context(), readOpts(consistency)...)
		if err != nil {
			return err
		}
		return a.emit(v, func(w io.Writer) { print(w, v) })
	}
	return cmd
}

// policyFlags are the flags shared by policy create and policy update.
type policyFlags struct {
	name           string
	features       featureList
	ttl            time.Duration
	seatRule       enumValue
	maxBorrowHours int64
	duration       time.Duration
}

// add registers the flags; create marks those policy create requires.
func (p *policyFlags) add(cmd *cobra.Command, create bool) {
	required, atLeastOne := "", ""
	if create {
		required, atLeastOne = " (required)", " (at least one required)"
	}
	p.seatRule.allowed = []string{api.SeatRuleProcess, api.SeatRuleMachine, api.SeatRuleUser}
	f := cmd.Flags()
	f.StringVar(&p.name, "name", "", "policy name"+required)
	f.Var(&p.features, "feature", "feature as name=seats (counted) or name (entitled, not counted); repeat or comma-separate"+atLeastOne)
	f.DurationVar(&p.ttl, "ttl", 0, "lease TTL: how long a seat lives without a heartbeat, e.g. 60s"+required)
	f.Var(&p.seatRule, "seat-rule", "what shares a seat: process (every checkout), machine or user")
	f.Int64Var(&p.maxBorrowHours, "max-borrow-hours", 0, "longest offline borrow, in hours (0: no borrowing)")
	f.DurationVar(&p.duration, "duration", 0, "license term: a license created without --expires expires this long after it is created, e.g. 8760h (0: never)")
}

func policyCreateCmd(a *app) *cobra.Command {
	var product string
	var p policyFlags
	cmd := &cobra.Command{
		Use:   "create --product ID --name NAME --feature F[=SEATS]... --ttl DURATION",
		Short: "Create a policy",
		Long: `Create a policy for a product. --product, --name, --ttl and at least one
--feature are required. Each --feature is name=seats for a counted feature
or just name for one that is entitled without a seat count.`,
		Example: `  tally policy create --product prd_1 --name "CAD floating" \
    --feature cad=3 --feature viewer --ttl 60s --seat-rule machine`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ttl, err := ttlSeconds("ttl", p.ttl)
			if err != nil {
				return err
			}
			if len(p.features.features) == 0 {
				return usagef("at least one --feature is required")
			}
			if p.maxBorrowHours < 0 {
				return usagef("--max-borrow-hours must be >= 0")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			pol, err := c.CreatePolicy(cmd.Context(), api.CreatePolicyRequest{
				ProductID:       product,
				Name:            p.name,
				Features:        p.features.features,
				LeaseTTLSeconds: ttl,
				SeatRule:        p.seatRule.value,
				MaxBorrowHours:  p.maxBorrowHours,
				DurationSeconds: int64(p.duration / time.Second),
			})
			if err != nil {
				return err
			}
			return a.emit(pol, func(w io.Writer) {
				fmt.Fprintf(w, "Created policy %s\n", pol.ID)
				printPolicy(w, pol)
			})
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "product id (required)")
	p.add(cmd, true)
	_ = cmd.MarkFlagRequired("product")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("ttl")
	return cmd
}

func printPolicy(w io.Writer, p *api.Policy) {
	row(w, "id", p.ID)
	row(w, "product", p.ProductID)
	row(w, "name", p.Name)
	row(w, "features", formatFeatures(p.Features))
	row(w, "lease_ttl", time.Duration(p.LeaseTTLSeconds)*time.Second)
	row(w, "seat_rule", p.SeatRule)
	row(w, "max_borrow_hours", p.MaxBorrowHours)
	if p.DurationSeconds > 0 {
		row(w, "duration", time.Duration(p.DurationSeconds)*time.Second)
	}
	row(w, "updated_at", fmtTime(p.UpdatedAt))
}

func policyListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{
		Use:     "list",
		Short:   "List policies",
		Example: `  tally policy list`,
		Args:    args(cobra.NoArgs),
	},
		(*client.Client).Policies,
		func(w io.Writer, list *api.PolicyList) {
			row(w, "ID", "PRODUCT", "NAME", "FEATURES", "TTL", "SEAT_RULE")
			for _, p := range list.Policies {
				row(w, p.ID, p.ProductID, p.Name, formatFeatures(p.Features),
					time.Duration(p.LeaseTTLSeconds)*time.Second, p.SeatRule)
			}
		})
}

func policyShowCmd(a *app) *cobra.Command {
	return showCmd(a, "Show one policy", `  tally policy show pol_1`, (*client.Client).Policy, printPolicy)
}

func policyUpdateCmd(a *app) *cobra.Command {
	var p policyFlags
	cmd := &cobra.Command{
		Use:   "update ID [--name N] [--feature F[=SEATS]...] [--ttl D] [--seat-rule R] [--max-borrow-hours N]",
		Short: "Change a policy (every license on it at once)",
		Long: `Change the given fields of a policy; fields not given stay as they are.
--feature replaces the whole feature list. The change applies to every
license issued on the policy at once.

Only this command's own flags and variables count as given: TALLY_FEATURE or
TALLY_TTL, exported for checkout, never change a policy; the environment
forms here are TALLY_POLICY_UPDATE_FEATURE, TALLY_POLICY_UPDATE_TTL and so on.`,
		Example: `  tally policy update pol_1 --feature cad=5 --feature viewer
  tally policy update pol_1 --ttl 2m --seat-rule user`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			var req api.UpdatePolicyRequest
			changed := cmd.Flags().Changed
			if changed("name") {
				req.Name = &p.name
			}
			if changed("feature") {
				req.Features = &p.features.features
			}
			if changed("ttl") {
				ttl, err := ttlSeconds("ttl", p.ttl)
				if err != nil {
					return err
				}
				req.LeaseTTLSeconds = &ttl
			}
			if changed("seat-rule") {
				req.SeatRule = &p.seatRule.value
			}
			if changed("max-borrow-hours") {
				if p.maxBorrowHours < 0 {
					return usagef("--max-borrow-hours must be >= 0")
				}
				req.MaxBorrowHours = &p.maxBorrowHours
			}
			if changed("duration") {
				secs := int64(p.duration / time.Second)
				req.DurationSeconds = &secs
			}
			if req == (api.UpdatePolicyRequest{}) {
				return usagef("nothing to update: give at least one of --name, --feature, --ttl, --seat-rule, --max-borrow-hours, --duration")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			pol, err := c.UpdatePolicy(cmd.Context(), argv[0], req)
			if err != nil {
				return err
			}
			return a.emit(pol, func(w io.Writer) {
				fmt.Fprintf(w, "Updated policy %s\n", pol.ID)
				printPolicy(w, pol)
			})
		},
	}
	p.add(cmd, false)
	return cmd
}

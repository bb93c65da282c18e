package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
)

// Names of the demo entitlement, so that a second run finds the first.
const (
	demoProduct  = "Demo CAD"
	demoPolicy   = "Floating, 3 seats"
	demoCustomer = "Demo Customer"
)

func newDevCmd() *cobra.Command {
	f := agentFlags{
		nodeID: "dev", dataDir: "tally-data", httpAddr: "127.0.0.1:7101",
		raftAddr: "127.0.0.1:7201", gossipAddr: "127.0.0.1:7301", bootstrapExpect: 1,
		clusterName: "tally-dev", logLevel: "warn", profile: "default",
	}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a single-node server for development, with a demo license",
		Long: `Run one node in ./tally-data (kept between runs) on 127.0.0.1:7101 and
provision a demo product, policy (feature "cad" with 3 seats, "viewer"
uncounted) and license on first start. Prints the license key and the admin
token. Not for production: one node has no failover.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			return runAgent(cmd.Context(), &f, func(httpAddr, token string) {
				if err := announceDemo(cmd.Context(), out, []string{httpAddr}, token); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "demo provisioning failed:", err)
				}
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", f.dataDir, "data directory")
	fl.StringVar(&f.httpAddr, "http-addr", f.httpAddr, "address of the HTTP API")
	fl.StringVar(&f.raftAddr, "raft-addr", f.raftAddr, "address for Raft traffic")
	fl.StringVar(&f.gossipAddr, "gossip-addr", f.gossipAddr, "address for gossip")
	fl.StringVar(&f.logLevel, "log-level", f.logLevel, "debug, info, warn or error")
	hideClientFlags(cmd)
	return cmd
}

func announceDemo(ctx context.Context, out io.Writer, addrs []string, token string) error {
	c, err := client.New(client.Config{Addrs: addrs, Token: token, RetryFor: 30 * time.Second})
	if err != nil {
		return err
	}
	lic, err := provisionDemo(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, `
Tally is running.
  HTTP API:     http://%s
  admin token:  %s
  demo license: %s   (feature "cad": 3 seats; "viewer": uncounted)

Try:
%s  export TALLY_ADDR=%s TALLY_TOKEN=%s
  tally checkout --key %s --feature cad
  tally validate --key %s --feature cad
  tally license list
`, addrs[0], token, lic.Key, pathHint(), strings.Join(addrs, ","), token, lic.Key, lic.Key)
	return nil
}

// pathHint is a line that puts this binary on PATH, so the commands printed
// after it run as written; it is empty when "tally" already finds this binary.
func pathHint() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	if found, err := exec.LookPath("tally"); err == nil {
		a, errA := os.Stat(found)
		b, errB := os.Stat(self)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return ""
		}
	}
	return "  export PATH=" + filepath.Dir(self) + ":$PATH\n"
}

// provisionDemo returns the active license of the demo customer, creating
// what is missing of it: the demo product and policy are reused when they
// exist (a suspended or revoked demo license gets a new license on the same
// policy, not a second "Demo CAD").
func provisionDemo(ctx context.Context, c *client.Client) (*api.License, error) {
	lics, err := waitLicenses(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, l := range lics.Licenses {
		if l.Customer == demoCustomer && l.Status == api.StatusActive {
			return &l, nil
		}
	}
	prod, err := demoProductOf(ctx, c)
	if err != nil {
		return nil, err
	}
	pol, err := demoPolicyOf(ctx, c, prod.ID)
	if err != nil {
		return nil, err
	}
	lic, err := c.CreateLicense(ctx, api.CreateLicenseRequest{PolicyID: pol.ID, Customer: demoCustomer})
	if err != nil {
		return nil, fmt.Errorf("create license: %w", err)
	}
	return lic, nil
}

// demoProductOf finds the demo product by name or creates it.
func demoProductOf(ctx context.Context, c *client.Client) (*api.Product, error) {
	list, err := c.Products(ctx)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	for _, p := range list.Products {
		if p.Name == demoProduct {
			return &p, nil
		}
	}
	prod, err := c.CreateProduct(ctx, api.CreateProductRequest{Name: demoProduct})
	if err != nil {
		return nil, fmt.Errorf("create product: %w", err)
	}
	return prod, nil
}

// demoPolicyOf finds the demo policy of the demo product or creates it.
func demoPolicyOf(ctx context.Context, c *client.Client, productID string) (*api.Policy, error) {
	list, err := c.Policies(ctx)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	for _, p := range list.Policies {
		if p.ProductID == productID && p.Name == demoPolicy {
			return &p, nil
		}
	}
	three := 3
	pol, err := c.CreatePolicy(ctx, api.CreatePolicyRequest{
		ProductID: productID, Name: demoPolicy, LeaseTTLSeconds: 60, SeatRule: api.SeatRuleProcess,
		Features: []api.Feature{{Name: "cad", Seats: &three}, {Name: "viewer"}},
	})
	if err != nil {
		return nil, fmt.Errorf("create policy: %w", err)
	}
	return pol, nil
}

// waitLicenses lists licenses once the cluster has a leader.
func waitLicenses(ctx context.Context, c *client.Client) (*api.LicenseList, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := c.Licenses(ctx)
		if err == nil || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func newDemoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Provision the demo product, policy and license on a running cluster",
		Long: `Create the demo product, policy (feature "cad" with 3 seats, "viewer" uncounted,
60 s lease TTL) and license on the cluster at --addr, unless they exist, and
print the license key. An existing demo product and policy are reused; only
what is missing is created. make run uses it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addrs := strings.Split(flagString(cmd, "addr"), ",")
			token := flagString(cmd, "token")
			if token == "" {
				return errors.New("the admin token is needed: --token or TALLY_TOKEN")
			}
			return announceDemo(cmd.Context(), cmd.OutOrStdout(), addrs, token)
		},
	}
}

// flagString reads a (persistent) flag's value.
func flagString(cmd *cobra.Command, name string) string {
	if f := cmd.Flag(name); f != nil {
		return f.Value.String()
	}
	return os.Getenv("TALLY_" + strings.ToUpper(name))
}

// Command tally is the single binary of Tally: the server (agent, dev), the
// desktop commands (checkout, heartbeat, checkin, validate), the admin
// commands (product, policy, license, lease, audit) and the cluster commands
// (status, members, operator).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed, or validate found the license not valid
	exitUsage = 2 // bad command line
)

// app holds the global flags and the output streams of one invocation.
type app struct {
	stdout, stderr io.Writer
	addr           string
	token          string
	json           bool
}

var traverseHooksOnce sync.Once

// newRootCommand builds the whole command tree writing to stdout and stderr.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	// Run every PersistentPreRunE on the path, so bindEnv runs even below a
	// command that has its own.
	traverseHooksOnce.Do(func() { cobra.EnableTraverseRunHooks = true })

	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "tally",
		Short: "Tally: a replicated floating-license server and its clients",
		Long: `Tally hands out floating-license seats from a 3- or 5-node Raft cluster.

Desktop commands check seats out and keep them; admin commands provision
products, policies and licenses; cluster commands inspect and operate the
nodes. Every flag can also be set from the environment: TALLY_ADDR,
TALLY_TOKEN and the flags of desktop and server commands as TALLY_<FLAG>
(TALLY_KEY), every other command's as TALLY_<COMMAND>_<FLAG>
(TALLY_POLICY_UPDATE_TTL). --help shows each; the command line wins.`,
		Example: `  export TALLY_ADDR=n1:7101,n2:7101,n3:7101 TALLY_TOKEN=secret
  tally status
  tally license list`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return bindEnv(cmd)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageErr(err) })

	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", "127.0.0.1:7101", "node addresses, comma-separated, host:port or http(s)://host:port")
	pf.StringVar(&a.token, "token", "", "admin bearer token")
	pf.BoolVar(&a.json, "json", false, "print the API objects as indented JSON")

	root.AddGroup(
		&cobra.Group{ID: "desktop", Title: "Desktop commands:"},
		&cobra.Group{ID: "admin", Title: "Admin commands:"},
		&cobra.Group{ID: "cluster", Title: "Cluster commands:"},
		&cobra.Group{ID: "server", Title: "Server commands:"},
	)
	addDesktopCommands(root, a)
	addAdminCommands(root, a)
	addLicenseCommands(root, a)
	addUsageCommands(root, a)
	addKeyCommands(root, a)
	addOfflineCommands(root, a)
	addClusterCommands(root, a)
	addServerCommands(root)
	addBenchCommand(root, a)
	// Cobra would add completion only when executing: add it now so that
	// its flags get their environment form too.
	root.InitDefaultCompletionCmd()
	annotateEnv(root)
	return root
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitCodeError
	if errors.As(err, &ee) {
		fmt.Fprintln(stderr, "Error:", ee.err)
		return ee.code
	}
	if isUsageError(err) {
		fmt.Fprintln(stderr, "Error:", err)
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	fmt.Fprintln(stderr, "Error:", err)
	return exitError
}

// usageError is a bad command line: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return &usageError{err: err} }

func usagef(format string, args ...any) error { return usageErr(fmt.Errorf(format, args...)) }

func isUsageError(err error) bool {
	var ue *usageError
	if errors.As(err, &ue) {
		return true
	}
	// Errors cobra builds itself.
	msg := err.Error()
	for _, p := range []string{"unknown command", "required flag", "unknown flag", "unknown shorthand", "if any flags in the group", "accepts ", "requires at least"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// exitCodeError ends the process with a given code after printing err.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// args wraps a cobra argument check so that its failure is a usage error.
// No argument may be empty: an empty lease id would otherwise reach the server
// as /v1/leases//heartbeat.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageErr(err)
		}
		for i, v := range a {
			if strings.TrimSpace(v) == "" {
				return usagef("%s must not be empty", argName(cmd, i))
			}
		}
		return nil
	}
}

// argName names the i-th positional argument as cmd's Use line does
// ("heartbeat LEASE_ID --key KEY": LEASE_ID).
func argName(cmd *cobra.Command, i int) string {
	words := strings.Fields(cmd.Use)
	for j, w := range words[min(1, len(words)):] {
		if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "[") {
			break
		}
		if j == i {
			return w
		}
	}
	return fmt.Sprintf("argument %d", i+1)
}

// group is a command that only holds subcommands.
func group(use, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return usagef("unknown command %q for %q", a[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}

// client builds an SDK client from --addr and --token.
func (a *app) client() (*client.Client, error) {
	c, err := client.New(client.Config{Addrs: splitAddrs(a.addr), Token: a.token})
	if err != nil {
		return nil, usageErr(err)
	}
	return c, nil
}

func splitAddrs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

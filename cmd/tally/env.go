package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// lookupEnv is os.LookupEnv; a variable so the rule is stated in one place.
var lookupEnv = os.LookupEnv

// The environment form of a flag.
//
// A flag name means one thing only within one part of the tree: --feature
// is the feature to check out for `checkout` but the policy's whole feature
// list for `policy update`, --ttl a lease's TTL or a policy's. So that a
// variable exported for one use never changes another command, the names
// are:
//
//   - TALLY_<FLAG> for the global flags (TALLY_ADDR, TALLY_TOKEN, TALLY_JSON)
//     and for the flags of the Desktop and Server commands (the "desktop"
//     and "server" groups of tally --help: checkout, heartbeat, checkin,
//     validate, verify, fingerprint; agent, dev, demo), where one name means
//     the same everywhere: TALLY_KEY, TALLY_FEATURE, TALLY_DATA_DIR.
//   - TALLY_<COMMAND PATH>_<FLAG> for every other command: the words after
//     "tally", then the flag, e.g. `tally policy update --ttl` is
//     TALLY_POLICY_UPDATE_TTL and `tally license export --output` is
//     TALLY_LICENSE_EXPORT_OUTPUT. A partial update such as policy update
//     so changes only what was given to it, never what another command's
//     variable says.
//
// Upper case, with "-" and " " turned into "_".
var unscopedGroups = map[string]bool{"desktop": true, "server": true}

// envName is the environment variable of flag on cmd (cmd may inherit it).
func envName(cmd *cobra.Command, flag string) string {
	owner := flagOwner(cmd, flag)
	top := owner
	for top.HasParent() && top.Parent().HasParent() {
		top = top.Parent()
	}
	scope := ""
	if owner.HasParent() && !unscopedGroups[top.GroupID] {
		// CommandPath is "tally policy update"; drop the binary's name.
		_, scope, _ = strings.Cut(owner.CommandPath(), " ")
		scope += "_"
	}
	return "TALLY_" + envWord(scope+flag)
}

func envWord(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(s))
}

// flagOwner is the command that defines flag: cmd itself, or the ancestor
// whose persistent flag cmd inherits.
func flagOwner(cmd *cobra.Command, flag string) *cobra.Command {
	if cmd.LocalNonPersistentFlags().Lookup(flag) != nil {
		return cmd
	}
	for c := cmd; c != nil; c = c.Parent() {
		if c.PersistentFlags().Lookup(flag) != nil {
			return c
		}
	}
	return cmd
}

// bindEnv sets every flag of cmd that was not given on the command line from
// its environment variable (envName), when that is set and not empty. A flag
// so set counts as given. A bad value is a usage error naming the variable.
func bindEnv(cmd *cobra.Command) error {
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" || firstErr != nil {
			return
		}
		name := envName(cmd, f.Name)
		v, ok := lookupEnv(name)
		if !ok || v == "" {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			firstErr = usagef("invalid value %q in $%s for --%s: %v", v, name, f.Name, err)
		}
	})
	return firstErr
}

// annotateEnv appends each flag's environment form to its usage text, on
// every command of the tree.
func annotateEnv(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) {
			if f.Name == "help" || strings.Contains(f.Usage, "[$TALLY_") {
				return
			}
			f.Usage = fmt.Sprintf("%s [$%s]", f.Usage, envName(c, f.Name))
		}
		c.LocalNonPersistentFlags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

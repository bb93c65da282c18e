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

// envName is the environment form of a flag: --data-dir is TALLY_DATA_DIR.
func envName(flag string) string {
	return "TALLY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv sets every flag of cmd that was not given on the command line from
// its TALLY_<FLAG> environment variable, when that is set and not empty.
// A bad value is a usage error naming the variable.
func bindEnv(cmd *cobra.Command) error {
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" || firstErr != nil {
			return
		}
		name := envName(f.Name)
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
	add := func(f *pflag.Flag) {
		if f.Name == "help" || strings.Contains(f.Usage, "[$TALLY_") {
			return
		}
		f.Usage = fmt.Sprintf("%s [$%s]", f.Usage, envName(f.Name))
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

package main

import (
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The audit's scenario: variables exported for desktop use must not change
// a policy through a partial update.
func TestDesktopEnvDoesNotChangePolicy(t *testing.T) {
	srv := newFakeServer(t)
	t.Setenv("TALLY_ADDR", srv.URL)
	t.Setenv("TALLY_KEY", "K")
	t.Setenv("TALLY_FEATURE", "cad")
	t.Setenv("TALLY_TTL", "5m")
	t.Setenv("TALLY_NAME", "renamed")
	t.Setenv("TALLY_SEAT_RULE", "user")
	t.Setenv("TALLY_MAX_BORROW_HOURS", "9")
	t.Setenv("TALLY_MACHINE", "ws-9")
	// policy create's variables are not policy update's.
	t.Setenv("TALLY_POLICY_CREATE_TTL", "7m")

	code, _, errOut := runCLI(t, "policy", "update", "pol1", "--seat-rule", "machine")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := strings.TrimSpace(string(srv.lastBody())); got != `{"seat_rule":"machine"}` {
		t.Errorf("update body = %s, want only the seat rule given", got)
	}

	// Its own scoped variable counts as given.
	t.Setenv("TALLY_POLICY_UPDATE_TTL", "2m")
	if code, _, errOut := runCLI(t, "policy", "update", "pol1", "--seat-rule", "machine"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := strings.TrimSpace(string(srv.lastBody())); got != `{"lease_ttl_seconds":120,"seat_rule":"machine"}` {
		t.Errorf("update body = %s, want the scoped TTL and the seat rule", got)
	}

	// policy create does not take its features from TALLY_FEATURE.
	code, _, errOut = runCLI(t, "policy", "create", "--product", "p", "--name", "n", "--ttl", "60s")
	if code != exitUsage || !strings.Contains(errOut, "at least one --feature") {
		t.Errorf("policy create without --feature: exit %d, %q", code, errOut)
	}

	// license export does not lock the file to the admin's TALLY_MACHINE.
	out := filepath.Join(t.TempDir(), "lic")
	if code, _, errOut := runCLI(t, "license", "export", "lic1", "-o", out); code != 0 {
		t.Fatalf("license export: exit %d: %s", code, errOut)
	}
	if got := strings.TrimSpace(string(srv.lastBody())); got != `{}` {
		t.Errorf("export body = %s, want no machine", got)
	}

	// The desktop commands still read them.
	if code, _, errOut := runCLI(t, "checkout"); code != 0 {
		t.Fatalf("checkout from the environment: exit %d: %s", code, errOut)
	}
	if body := string(srv.lastBody()); !strings.Contains(body, `"feature":"cad"`) || !strings.Contains(body, `"ttl_seconds":300`) ||
		!strings.Contains(body, `"machine":"ws-9"`) {
		t.Errorf("checkout body = %s", body)
	}
}

// sharedEnv lists the variables that flags of different wording share on
// purpose: one setting of the desktop, or of the server, used by several
// commands.
var sharedEnv = map[string]string{
	"TALLY_FEATURE":     "the desktop's feature: checkout takes it, validate checks it",
	"TALLY_MACHINE":     "the desktop's machine: checkout, validate and verify",
	"TALLY_DATA_DIR":    "a server's data dir: agent and dev",
	"TALLY_HTTP_ADDR":   "a server's API address: agent and dev",
	"TALLY_RAFT_ADDR":   "a server's Raft address: agent and dev",
	"TALLY_GOSSIP_ADDR": "a server's gossip address: agent and dev",
}

var envSuffix = regexp.MustCompile(` \[\$TALLY_[A-Z0-9_]+\]$`)

// No two flags that mean different things share a variable: the same name
// must be the same flag with the same help, or be listed in sharedEnv.
func TestEnvNamesDoNotCollide(t *testing.T) {
	type use struct{ cmd, flag, usage string }
	seen := map[string]use{}
	sharedUsed := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			env := envName(c, f.Name)
			u := use{c.CommandPath(), f.Name, envSuffix.ReplaceAllString(f.Usage, "")}
			if !strings.HasSuffix(f.Usage, "[$"+env+"]") {
				t.Errorf("%s --%s: help %q does not show $%s", u.cmd, f.Name, f.Usage, env)
			}
			first, ok := seen[env]
			if !ok {
				seen[env] = u
				return
			}
			if first.flag == u.flag && first.usage == u.usage {
				return
			}
			if _, ok := sharedEnv[env]; ok {
				sharedUsed[env] = true
				return
			}
			t.Errorf("$%s is both %s --%s (%q) and %s --%s (%q)", env, first.cmd, first.flag, first.usage, u.cmd, u.flag, u.usage)
		}
		c.LocalNonPersistentFlags().VisitAll(check)
		c.PersistentFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand(io.Discard, io.Discard))
	for env := range sharedEnv {
		if !sharedUsed[env] {
			t.Errorf("sharedEnv lists $%s, which no two flags share any more", env)
		}
	}
}

func TestEnvNameRule(t *testing.T) {
	root := newRootCommand(io.Discard, io.Discard)
	for _, tc := range []struct {
		path []string
		flag string
		want string
	}{
		{[]string{"checkout"}, "addr", "TALLY_ADDR"},
		{[]string{"policy", "update"}, "token", "TALLY_TOKEN"},
		{[]string{"checkout"}, "request-id", "TALLY_REQUEST_ID"},
		{[]string{"verify"}, "time-floor", "TALLY_TIME_FLOOR"},
		{[]string{"agent"}, "bootstrap-expect", "TALLY_BOOTSTRAP_EXPECT"},
		{[]string{"policy", "update"}, "max-borrow-hours", "TALLY_POLICY_UPDATE_MAX_BORROW_HOURS"},
		{[]string{"license", "export"}, "output", "TALLY_LICENSE_EXPORT_OUTPUT"},
		{[]string{"bench"}, "ttl", "TALLY_BENCH_TTL"},
	} {
		cmd, _, err := root.Find(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := envName(cmd, tc.flag); got != tc.want {
			t.Errorf("%v --%s: %s, want %s", tc.path, tc.flag, got, tc.want)
		}
	}
}

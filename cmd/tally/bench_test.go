package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/tallyhq/tally/bench"
)

// runAsTally makes this test binary act as the tally binary when started
// with it set: `tally bench --local` runs os.Executable() as its agents,
// which in a test is the test binary. The name has no TALLY_ prefix
// because bench strips those from the agents' environment.
const runAsTally = "GO_TEST_RUN_AS_TALLY"

func TestMain(m *testing.M) {
	if os.Getenv(runAsTally) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestBenchUsageErrors(t *testing.T) {
	t.Setenv("TALLY_TOKEN", "")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "name a scenario"},
		{[]string{"bench", "nosuch", "--token", "t"}, `unknown scenario "nosuch"`},
		{[]string{"bench", "checkout-storm"}, "--token or TALLY_TOKEN"},
		{[]string{"bench", "failover", "--token", "t"}, "--local 3"},
		{[]string{"bench", "validate", "--token", "t", "--consistency", "eventual"}, "must be one of stale, linearizable"},
		{[]string{"bench", "expiry-storm", "--token", "t", "--ttl", "500ms"}, "--ttl must be at least 1s"},
		{[]string{"bench", "checkout-storm", "--token", "t", "--clients", "-1"}, "--clients must not be negative"},
		{[]string{"bench", "--local", "3", "--raft-profile", "wan"}, "--raft-profile must be default or lan"},
		{[]string{"bench", "--local", "2"}, "--local takes 1, 3 or 5 nodes"},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr, exitUsage, tt.want)
		}
	}
}

func TestBenchEnvForms(t *testing.T) {
	// A bad value in the environment form is reported by its name.
	t.Setenv("TALLY_BENCH_CLIENTS", "many")
	code, _, stderr := runCLI(t, "bench", "checkout-storm", "--token", "t")
	if code != exitUsage || !strings.Contains(stderr, "$TALLY_BENCH_CLIENTS") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestBenchLocalCheckoutStorm runs the whole path a user runs: a local
// 3-node cluster from this binary, a 2-second checkout storm, the JSON
// report, and the cluster gone afterwards.
func TestBenchLocalCheckoutStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Setenv(runAsTally, "1")
	code, stdout, stderr := runCLI(t, "bench", "checkout-storm", "--local", "3", "--duration", "2s", "--clients", "4", "--json")
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	var r bench.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, stdout)
	}
	if r.Scenario != "checkout-storm" || !strings.Contains(r.Target, "local 3-node cluster") || len(r.Ops) != 2 {
		t.Fatalf("report %+v", r)
	}
	co, ci := r.Ops[0], r.Ops[1]
	if co.Name != "checkout" || co.OK == 0 || ci.Name != "checkin" || ci.OK == 0 {
		t.Errorf("ops %+v", r.Ops)
	}
	// Each client checks its seat in before taking the next, and there is
	// a seat per client: nothing may be refused.
	if co.Failed != 0 || ci.Failed != 0 {
		t.Errorf("failures: checkout %v, checkin %v", co.Errors, ci.Errors)
	}
	if !strings.Contains(stderr, "local cluster up at") || !strings.Contains(stderr, "provisioning on product") {
		t.Errorf("stderr does not say what bench started and provisioned:\n%s", stderr)
	}
	// The directory named on stderr is removed with the cluster.
	_, after, _ := strings.Cut(stderr, "data and logs in ")
	dir, _, _ := strings.Cut(after, " ")
	if dir == "" {
		t.Fatalf("no directory named on stderr:\n%s", stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after the run: %v", dir, err)
	}
}

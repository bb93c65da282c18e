package chaos

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clustertest "github.com/tallyhq/tally/cluster-test"
)

// Flags of the long run: make chaos RUNS=200 DURATION=5m NODES=5.
var (
	flagRuns     = flag.Int("chaos.runs", 20, "number of chaos runs")
	flagDuration = flag.Duration("chaos.duration", 30*time.Second, "length of one run")
	flagNodes    = flag.Int("chaos.nodes", 3, "cluster size (3 or 5)")
	flagParallel = flag.Int("chaos.parallel", 2, "runs at once")
	flagSeed     = flag.Int64("chaos.seed", 0, "seed of the first run (0: from the clock)")
	flagOut      = flag.String("chaos.out", "", "folder for the evidence of failed runs (default: a temp folder kept on failure)")
	flagNetns    = flag.Bool("chaos.netns", true, "run nodes in network namespaces when possible (network faults need it)")
	flagRemove   = flag.Bool("chaos.remove", false, "add the remove-and-rejoin fault (slow: waits for gossip to mark the node dead)")
	flagFaults   = flag.String("chaos.faults", "", "comma-separated fault names replacing the default mix (see nemesis.go), to chase one fault")
	flagArgs     = flag.String("chaos.args", "", "space-separated agent flags added after the suite's own (later flags win)")
)

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

func outDir(t *testing.T) string {
	if *flagOut != "" {
		return *flagOut
	}
	dir, err := os.MkdirTemp("", "tally-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestChaos is the pass that make test runs: several runs of the default
// mix, each of which must find nothing.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos runs are long; not in -short")
	}
	out := outDir(t)
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	var (
		mu      sync.Mutex
		totals  = map[string]int{}
		ops     int
		bad     int
		slowest time.Duration
	)
	sem := make(chan struct{}, *flagParallel)
	t.Run("runs", func(t *testing.T) {
		for r := 0; r < *flagRuns; r++ {
			cfg := DefaultConfig()
			cfg.Nodes, cfg.Duration, cfg.Netns, cfg.OutDir = *flagNodes, *flagDuration, *flagNetns, out
			cfg.Seed = seed + int64(r)
			if cfg.Nodes >= 5 {
				cfg.Faults = append(cfg.Faults, FiveNodeFaults...)
			}
			if *flagRemove {
				cfg.Faults = append(cfg.Faults, FaultRemoveReadd)
			}
			if *flagFaults != "" {
				cfg.Faults = strings.Split(*flagFaults, ",")
			}
			cfg.ExtraArgs = strings.Fields(*flagArgs)
			t.Run(fmt.Sprintf("run-%03d", r), func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				rep := Run(t, cfg)
				t.Log(rep.Summary())
				mu.Lock()
				ops += rep.TotalOps
				for _, f := range rep.Faults {
					totals[f.Kind]++
				}
				if rep.RecoverMax > slowest {
					slowest = rep.RecoverMax
				}
				if len(rep.Violations) > 0 {
					bad++
				}
				mu.Unlock()
				for _, v := range rep.Violations {
					t.Errorf("violation: %s", v)
				}
				if rep.Dir != "" {
					t.Errorf("evidence kept in %s", rep.Dir)
				}
			})
		}
	})
	var faults []string
	n := 0
	for k, v := range totals {
		faults = append(faults, fmt.Sprintf("%s×%d", k, v))
		n += v
	}
	t.Logf("chaos: %d runs, %d ops, %d faults (%s), %d runs with violations, slowest recovery %v",
		*flagRuns, ops, n, strings.Join(faults, " "), bad, slowest.Round(time.Millisecond))
}

// plantedBinary builds the agent with the planted bugs compiled in.
func plantedBinary(t *testing.T) string {
	t.Helper()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("finding the module root: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "tally-chaosbugs")
	cmd := exec.Command("go", "build", "-tags", "chaosbugs", "-o", bin, "./cmd/tally")
	cmd.Dir = strings.TrimSpace(string(root))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the planted binary: %v\n%s", err, out)
	}
	return bin
}

// TestPlantedBugsAreCaught shows the checkers are not blind: each planted
// bug must make a short run report a violation.
func TestPlantedBugsAreCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos runs are long; not in -short")
	}
	bin := plantedBinary(t)
	cases := []struct {
		bug    string
		faults []string
		want   string   // a violation must contain this
		args   []string // extra agent flags
	}{
		// A follower that falls behind serves a stale "linearizable" count.
		{"stale-read", []string{FaultPauseFollower, FaultIsolateFollow}, "linearizable", nil},
		{"skip-seat-check", nil, "linearizable", nil},
		// Nodes stamp leases with their own clocks: their states differ.
		{"wall-clock-apply", nil, "state", nil},
		// Answers a checkout the FSM then refuses: the lease is lost.
		{"ack-before-commit", nil, "acknowledged", nil},
		// A follower that installs a snapshot keeps leases it should drop.
		{"restore-keeps-state", []string{FaultPauseFollower}, "state",
			[]string{"--snapshot-threshold", "8", "--trailing-logs", "2", "--snapshot-interval", "100ms"}},
	}
	out := outDir(t)
	for _, tc := range cases {
		t.Run(tc.bug, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.Duration = 15 * time.Second
			cfg.Faults, cfg.FaultEvery = tc.faults, 2*time.Second
			cfg.Binary, cfg.Env = bin, []string{"TALLY_CHAOS_BUG=" + tc.bug}
			cfg.ExtraArgs = tc.args
			cfg.OutDir = filepath.Join(out, tc.bug)
			cfg.CheckTimeout = 30 * time.Second
			rep := Run(t, cfg)
			t.Log(rep.Summary())
			for _, v := range rep.Violations {
				if strings.Contains(v, tc.want) {
					return
				}
			}
			t.Errorf("planted bug %s was not caught (want a %q violation; got %v)", tc.bug, tc.want, rep.Violations)
		})
	}
}

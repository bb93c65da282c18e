package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	clustertest "github.com/tallyhq/tally/cluster-test"
)

// Config is one chaos run.
type Config struct {
	Nodes    int
	Duration time.Duration
	Clients  int
	Pools    int           // licenses contended for, 2-5 seats each
	LeaseTTL time.Duration // policy TTL: short, so leases expire during the run
	// Faults is the nemesis mix (names from nemesis.go); empty means none.
	Faults     []string
	FaultEvery time.Duration
	FaultHold  time.Duration
	// Netns runs every node in its own network namespace, which network
	// faults need; without it they are skipped.
	Netns bool
	Seed  int64
	// OutDir receives the porcupine visualization and node logs of a run
	// that found a violation.
	OutDir string
	// Binary and Env select the agent build (a planted bug's).
	Binary string
	Env    []string
	// CheckTimeout bounds porcupine.
	CheckTimeout time.Duration
	// ExtraArgs are appended to every agent's flags (later flags win).
	ExtraArgs []string
	// LogLevel of the agents (info keeps leadership changes in the logs).
	LogLevel string
}

// DefaultConfig is the CI pass's run: 3 nodes, 30 s, process and network
// faults every few seconds, snapshots forced often.
func DefaultConfig() Config {
	return Config{
		Nodes:        3,
		Duration:     30 * time.Second,
		Clients:      8,
		Pools:        3,
		LeaseTTL:     2 * time.Second,
		Faults:       append(append([]string{}, ProcessFaults...), NetworkFaults...),
		FaultEvery:   3 * time.Second,
		FaultHold:    2 * time.Second,
		Netns:        true,
		CheckTimeout: 2 * time.Minute,
		LogLevel:     "info",
	}
}

// Report is what one run found.
type Report struct {
	Seed       int64
	Nodes      int
	Netns      bool
	Ops        map[string]int // by kind/outcome
	TotalOps   int
	Faults     []FaultEvent
	Violations []string
	// Linearizable is porcupine's verdict; Unknown when it timed out.
	Linearizable, Unknown bool
	CheckTime             time.Duration
	// Recover is, per fault, the time from injection to the next
	// acknowledged write.
	RecoverMax, RecoverP50 time.Duration
	Dir                    string
}

// Run starts a cluster, drives the workload under the nemesis, heals, and
// checks the history and the end state. It fails t only for harness
// problems; violations are returned in the Report.
func Run(t testing.TB, cfg Config) *Report {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano()
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	// Snapshots every few dozen entries, so that a node that falls
	// behind catches up by snapshot install, not by log.
	opts := []clustertest.Option{
		clustertest.WithLogLevel(cfg.LogLevel),
		clustertest.ExtraArgs("--snapshot-threshold", "32", "--trailing-logs", "8", "--snapshot-interval", "250ms"),
		clustertest.ExtraArgs(cfg.ExtraArgs...),
	}
	netns := false
	if cfg.Netns {
		if ok, _ := clustertest.NetnsAvailable(); ok {
			opts = append(opts, clustertest.WithNetns())
			netns = true
		}
	}
	if cfg.Binary != "" {
		opts = append(opts, clustertest.WithBinary(cfg.Binary))
	}
	if len(cfg.Env) > 0 {
		opts = append(opts, clustertest.WithEnv(cfg.Env...))
	}
	c := clustertest.New(t, cfg.Nodes, opts...)
	rep := &Report{Seed: cfg.Seed, Nodes: cfg.Nodes, Netns: netns, Ops: map[string]int{}}

	pools, seats := provisionPools(t, c, cfg, rng)
	w := newWorkload(c.Addrs, pools, 2*time.Second)
	mon := newLeaderMonitor(c)

	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < cfg.Clients; i++ {
		wg.Add(1)
		go func(i int, seed int64) {
			defer wg.Done()
			w.client(ctx, i, seed)
		}(i, rng.Int63())
	}
	wg.Add(1)
	go func() { defer wg.Done(); mon.run(ctx) }()
	nem := &nemesis{c: c, rng: rand.New(rand.NewSource(rng.Int63())), faults: usableFaults(cfg, netns), hold: cfg.FaultHold}
	nem.run(ctx, cfg.FaultEvery)
	wg.Wait()
	rep.Faults = nem.events

	// Heal: every fault is undone by its injector; wait for one leader
	// and for every node to apply everything.
	c.WaitLeader()
	audit, live := readBack(t, c)
	h := History{Seats: seats, Ops: w.rec.snapshot()}
	for _, op := range h.Ops {
		rep.Ops[opLabel(op)]++
	}
	rep.TotalOps = len(h.Ops)
	rep.RecoverMax, rep.RecoverP50 = recovery(nem.events, h.Ops)

	resolved := Resolve(h, audit)
	start := time.Now()
	res := Check(resolved, cfg.CheckTimeout)
	rep.CheckTime = time.Since(start)
	rep.Linearizable, rep.Unknown = res.Linearizable, res.Unknown
	if !res.Linearizable && !res.Unknown {
		rep.Violations = append(rep.Violations, "history is not linearizable (porcupine)")
	}
	for _, v := range CheckPromises(resolved) {
		rep.Violations = append(rep.Violations, "promise: "+v)
	}
	for _, v := range CheckAcknowledged(resolved, live) {
		rep.Violations = append(rep.Violations, "acknowledged: "+v)
	}
	for _, v := range CheckRetries(resolved) {
		rep.Violations = append(rep.Violations, "retry: "+v)
	}
	for _, v := range mon.violations() {
		rep.Violations = append(rep.Violations, "leaders: "+v)
	}
	for _, v := range c.InvariantViolations() {
		rep.Violations = append(rep.Violations, "state: "+v)
	}
	if len(rep.Violations) > 0 && cfg.OutDir != "" {
		rep.Dir = keepEvidence(t, c, cfg.OutDir, res, rep)
		writeJSON(t, filepath.Join(rep.Dir, "history.json"), h)
		writeJSON(t, filepath.Join(rep.Dir, "audit.json"), audit)
	}
	return rep
}

// usableFaults drops network faults without namespaces and 5-node shapes
// on smaller clusters.
func usableFaults(cfg Config, netns bool) []string {
	var out []string
	for _, f := range cfg.Faults {
		switch {
		case contains(NetworkFaults, f) && !netns:
		case contains(FiveNodeFaults, f) && (!netns || cfg.Nodes < 5):
		default:
			out = append(out, f)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func provisionPools(t testing.TB, c *clustertest.Cluster, cfg Config, rng *rand.Rand) ([]pool, map[string]int) {
	t.Helper()
	seats := map[string]int{}
	var pools []pool
	for i := 0; i < cfg.Pools; i++ {
		n := 2 + rng.Intn(4)
		lic := c.ProvisionLicense(cfg.LeaseTTL, clustertest.Seats("cad", n))
		pools = append(pools, pool{id: lic.ID, key: lic.Key, seats: n})
		seats[lic.ID] = n
	}
	return pools, seats
}

// readBack reads the live leases and then the whole audit log from the
// leader, linearizably, after the run. The order matters: a lease may still
// expire while they are read, and its lease.expired record is written in the
// same Apply that ends it, so a lease missing from the list read first is
// surely accounted for in the log read after.
func readBack(t testing.TB, c *clustertest.Cluster) ([]api.AuditRecord, map[string]bool) {
	t.Helper()
	leader := c.WaitLeader()
	var leases api.LeaseList
	if err := c.Call(leader, http.MethodGet, "/v1/leases?consistency=linearizable", nil, &leases); err != nil {
		t.Fatalf("reading live leases: %v", err)
	}
	live := map[string]bool{}
	for _, l := range leases.Leases {
		live[l.ID] = true
	}
	var audit []api.AuditRecord
	for {
		var page api.AuditList
		path := fmt.Sprintf("/v1/audit?after=%d&limit=10000&consistency=linearizable", uint64(len(audit)))
		if err := c.Call(leader, http.MethodGet, path, nil, &page); err != nil {
			t.Fatalf("reading the audit log: %v", err)
		}
		audit = append(audit, page.Records...)
		if len(page.Records) < 10000 {
			break
		}
	}
	return audit, live
}

func opLabel(op Op) string {
	kinds := map[OpKind]string{OpCheckout: "checkout", OpCheckin: "checkin", OpHeartbeat: "heartbeat", OpCount: "count", OpExpire: "expire"}
	outcomes := map[Outcome]string{OutcomeOK: "ok", OutcomeFull: "full", OutcomeGone: "gone", OutcomeUnknown: "unknown", OutcomeFailed: "failed"}
	return kinds[op.Kind] + "/" + outcomes[op.Outcome]
}

// recovery measures, for each fault, how long after its injection the next
// write was acknowledged.
func recovery(events []FaultEvent, ops []Op) (maxD, p50 time.Duration) {
	var writes []int64
	for _, op := range ops {
		if op.Kind == OpCheckout && (op.Outcome == OutcomeOK || op.Outcome == OutcomeFull) {
			writes = append(writes, op.Return)
		}
	}
	sort.Slice(writes, func(i, j int) bool { return writes[i] < writes[j] })
	var ds []time.Duration
	for _, ev := range events {
		start := ev.Start.UnixNano()
		i := sort.Search(len(writes), func(i int) bool { return writes[i] > start })
		if i < len(writes) {
			ds = append(ds, time.Duration(writes[i]-start))
		}
	}
	if len(ds) == 0 {
		return 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)-1], ds[len(ds)/2]
}

func writeJSON(t testing.TB, path string, v any) {
	b, err := json.MarshalIndent(v, "", " ")
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Logf("keeping %s: %v", path, err)
	}
}

// keepEvidence writes the visualization, the history and the node logs.
func keepEvidence(t testing.TB, c *clustertest.Cluster, outDir string, res CheckResult, rep *Report) string {
	dir := filepath.Join(outDir, fmt.Sprintf("seed-%d", rep.Seed))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keeping evidence: %v", err)
		return ""
	}
	if err := res.WriteVisualization(filepath.Join(dir, "history.html")); err != nil {
		t.Logf("visualization: %v", err)
	}
	for i := 0; i < c.N(); i++ {
		if b, err := os.ReadFile(c.LogPath(i)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, c.NodeID(i)+".log"), b, 0o644)
		}
	}
	return dir
}

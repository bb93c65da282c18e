package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// runFake runs one scenario against the fake with tiny sizes.
func runFake(t *testing.T, f *fakeCluster, name string, tune func(*Options)) *Report {
	t.Helper()
	opts := Options{Addrs: []string{f.srv.URL}, Token: "test-admin-token", Timeout: 5 * time.Second}
	tune(&opts)
	reports, err := Run(context.Background(), name, opts)
	if err != nil {
		t.Fatalf("Run(%s): %v", name, err)
	}
	if len(reports) != 1 {
		t.Fatalf("Run(%s) gave %d reports", name, len(reports))
	}
	return reports[0]
}

func opOf(t *testing.T, r *Report, name string) OpReport {
	t.Helper()
	for _, o := range r.Ops {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("report %s has no op %q: %+v", r.Scenario, name, r.Ops)
	return OpReport{}
}

func resultOf(r *Report, name string) (Result, bool) {
	for _, res := range r.Results {
		if res.Name == name {
			return res, true
		}
	}
	return Result{}, false
}

// sameCounts checks that bench counted exactly what the fake answered,
// and that both outcomes happened at all.
func sameCounts(t *testing.T, f *fakeCluster, route string, o OpReport, wantErr string) {
	t.Helper()
	ok, errs := f.counts(route)
	if o.OK != int64(ok) {
		t.Errorf("%s: bench counted %d ok, the fake answered %d", o.Name, o.OK, ok)
	}
	var total int64
	for code, n := range errs {
		total += int64(n)
		if o.Errors[code] != int64(n) {
			t.Errorf("%s: bench counted %d %s, the fake answered %d", o.Name, o.Errors[code], code, n)
		}
	}
	if o.Failed != total || int64(len(o.Errors)) != int64(len(errs)) {
		t.Errorf("%s: bench counted failures %v, the fake answered %v", o.Name, o.Errors, errs)
	}
	if ok == 0 || (wantErr != "" && errs[wantErr] == 0) {
		t.Errorf("%s: the test needs both outcomes: ok %d, errors %v", o.Name, ok, errs)
	}
	if o.Histogram == nil || o.Latency.P50 <= 0 || o.Latency.Max < o.Latency.P99 {
		t.Errorf("%s: latency summary %+v, histogram %v", o.Name, o.Latency, o.Histogram)
	}
}

func TestCheckoutStormCountsSuccessesAndErrorCodes(t *testing.T) {
	f := newFakeCluster(t, map[string]failure{
		"checkout": {every: 3, status: 409, code: api.CodeNoSeatsAvailable},
		"checkin":  {every: 4, status: 503, code: api.CodeNoLeader},
	})
	r := runFake(t, f, "checkout-storm", func(o *Options) { o.Clients, o.Duration, o.Licenses = 3, 300*time.Millisecond, 2 })
	sameCounts(t, f, "checkout", opOf(t, r, "checkout"), api.CodeNoSeatsAvailable)
	sameCounts(t, f, "checkin", opOf(t, r, "checkin"), api.CodeNoLeader)
	if r.Params["clients"] != "3" || r.Params["licenses"] != "2" {
		t.Errorf("params = %v", r.Params)
	}
}

func TestValidateCountsInvalidAnswersAsErrors(t *testing.T) {
	f := newFakeCluster(t, map[string]failure{"validate": {every: 7, status: 401, code: api.CodeUnauthorized}})
	r := runFake(t, f, "validate", func(o *Options) {
		o.Clients, o.Duration, o.Node, o.Consistency = 2, 200*time.Millisecond, "leader", api.ConsistencyLinearizable
	})
	o := opOf(t, r, "validate")
	sameCounts(t, f, "validate", o, api.CodeUnauthorized)
	if o.Errors[api.CodeLicenseSuspended] == 0 {
		t.Errorf("a 200 with valid false was not counted under its code: %v", o.Errors)
	}
	if r.Params["consistency"] != "linearizable" {
		t.Errorf("params = %v", r.Params)
	}
}

func TestDesktopsHeartbeatAndLeaderCPU(t *testing.T) {
	f := newFakeCluster(t, map[string]failure{"heartbeat": {every: 5, status: 410, code: api.CodeLeaseExpired}})
	r := runFake(t, f, "desktops", func(o *Options) {
		o.Desktops, o.Interval, o.Duration, o.Clients = 6, 100*time.Millisecond, 400*time.Millisecond, 3
	})
	sameCounts(t, f, "checkout", opOf(t, r, "checkout"), "")
	sameCounts(t, f, "heartbeat", opOf(t, r, "heartbeat"), api.CodeLeaseExpired)
	if got := opOf(t, r, "checkout").OK; got != 6 {
		t.Errorf("checked out %d desktops, want 6", got)
	}
	// A desktop told lease_expired stops: it never heartbeats again.
	f.mu.Lock()
	zombies := f.zombies
	f.mu.Unlock()
	if zombies != 0 {
		t.Errorf("%d heartbeats came for leases already answered lease_expired", zombies)
	}
	for _, name := range []string{"leader_cpu", "raft_entries", "heartbeats_wanted"} {
		if _, ok := resultOf(r, name); !ok {
			t.Errorf("no %s result: %+v (notes %v)", name, r.Results, r.Notes)
		}
	}
	if res, _ := resultOf(r, "heartbeats_wanted"); res.Value != 60 {
		t.Errorf("heartbeats_wanted = %v, want 6 desktops / 100ms = 60", res.Value)
	}
}

func TestExpiryStormWaitsForEverySeat(t *testing.T) {
	f := newFakeCluster(t, nil)
	r := runFake(t, f, "expiry-storm", func(o *Options) { o.Leases, o.TTL, o.Clients = 10, time.Second, 2 })
	if got := opOf(t, r, "storm_checkout").OK; got != 10 {
		t.Errorf("storm_checkout ok = %d, want 10", got)
	}
	ok, _ := f.counts("checkout")
	var counted int64
	for _, name := range []string{"storm_checkout", "checkout_baseline", "checkout_during_expiry"} {
		counted += opOf(t, r, name).OK
	}
	if counted != int64(ok) {
		t.Errorf("checkouts counted %d, the fake answered %d", counted, ok)
	}
	res, found := resultOf(r, "all_free_after")
	if !found || res.Value < 0 {
		t.Errorf("all_free_after = %+v", res)
	}
	if res, found := resultOf(r, "beyond_due"); !found || res.Value < 0 {
		t.Errorf("beyond_due = %+v: seats were free before the last lease fell due", res)
	}
}

// The storm's leases are sent over two seconds but fall due within one
// second of each other: each asks for the TTL left until the due time.
func TestExpiryStormLeasesFallDueTogether(t *testing.T) {
	f := newFakeCluster(t, nil)
	// 256 leases, 32 in flight, 250 ms each: 8 waves over 2 s. With one
	// fixed TTL their deadlines would spread over 1.75 s.
	f.checkoutDelay = 250 * time.Millisecond
	r := runFake(t, f, "expiry-storm", func(o *Options) { o.Leases, o.TTL, o.Clients = 256, 3*time.Second, 1 })
	if got := opOf(t, r, "storm_checkout").OK; got != 256 {
		t.Fatalf("storm_checkout ok = %d, want 256", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.stormDue) != 256 {
		t.Fatalf("the fake saw %d storm checkouts, want 256", len(f.stormDue))
	}
	lo, hi := f.stormDue[0], f.stormDue[0]
	for _, d := range f.stormDue {
		if d.Before(lo) {
			lo = d
		}
		if d.After(hi) {
			hi = d
		}
	}
	if spread := hi.Sub(lo); spread > 1100*time.Millisecond {
		t.Errorf("storm leases fall due over %s, want within about one second", spread)
	}
}

func TestLeaseDeadline(t *testing.T) {
	guess := time.Unix(100, 0)
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	ans := []byte(`{"lease":{"id":"lse_1","issued_at":"2026-11-27T09:59:00Z","expires_at":"2026-11-27T10:00:00.123456789Z"},"token":"x"}`)
	if got := leaseDeadline(ans, guess); !got.Equal(at) {
		t.Errorf("leaseDeadline = %s, want %s", got, at)
	}
	for _, bad := range []string{`{}`, `{"expires_at":"soon"}`, `{"expires_at":"0001-01-01T00:00:00Z"}`} {
		if got := leaseDeadline([]byte(bad), guess); !got.Equal(guess) {
			t.Errorf("leaseDeadline(%s) = %s, want the guess", bad, got)
		}
	}
}

func TestStormTTL(t *testing.T) {
	for _, c := range []struct {
		left time.Duration
		want int64
	}{{-time.Second, 1}, {0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {time.Second + time.Millisecond, 2}, {59500 * time.Millisecond, 60}} {
		if got := stormTTL(c.left); got != c.want {
			t.Errorf("stormTTL(%s) = %d, want %d", c.left, got, c.want)
		}
	}
}

func TestProvisionSurgeCountsCreationsAndPatches(t *testing.T) {
	f := newFakeCluster(t, map[string]failure{"license": {every: 6, status: 503, code: api.CodeNoLeader}})
	r := runFake(t, f, "provision-surge", func(o *Options) { o.Licenses, o.Policies, o.Clients = 20, 2, 4 })
	lic := opOf(t, r, "create_license")
	sameCounts(t, f, "license", lic, api.CodeNoLeader)
	if lic.OK+lic.Failed != 20 {
		t.Errorf("create_license: %d ok + %d failed, want 20 requests", lic.OK, lic.Failed)
	}
	if got := opOf(t, r, "create_policy").OK; got != 2 {
		t.Errorf("create_policy ok = %d, want 2", got)
	}
	if got := opOf(t, r, "patch_policy").OK; got != 1 {
		t.Errorf("patch_policy ok = %d, want 1", got)
	}
	if _, ok := resultOf(r, "patch_visible_everywhere"); !ok {
		t.Errorf("the patched seat count was not seen: results %+v, notes %v", r.Results, r.Notes)
	}
}

func TestFailoverNeedsALocalCluster(t *testing.T) {
	_, err := Run(context.Background(), "failover", Options{Addrs: []string{"127.0.0.1:1"}, Token: "x"})
	if !errors.Is(err, ErrNeedsLocal) {
		t.Fatalf("failover on a foreign cluster: err = %v, want ErrNeedsLocal", err)
	}
	if _, err := Run(context.Background(), "no-such", Options{Addrs: []string{"127.0.0.1:1"}}); err == nil {
		t.Fatal("an unknown scenario ran")
	}
}

func TestAllRunsEveryScenarioButFailoverWithoutLocal(t *testing.T) {
	var got []string
	for _, p := range allRuns(Options{}) {
		got = append(got, p.name+"/"+p.opts.Consistency)
	}
	want := []string{"checkout-storm/", "desktops/", "validate/stale", "validate/linearizable", "expiry-storm/", "provision-surge/"}
	if len(got) != len(want) {
		t.Fatalf("all runs %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("all runs %v, want %v", got, want)
		}
	}
}

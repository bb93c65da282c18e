package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/internal/freeport"
	"github.com/tallyhq/tally/node"
	"github.com/tallyhq/tally/transport"
	"github.com/valyala/fasthttp"
)

// Benchmarks of a real single-node node: the in-process stale validation
// read, and the HTTP checkout path through transport's handlers over
// httptest (loopback TCP, JSON, token signing, one Raft apply with its
// fsync). Production timings (DefaultConfig), gossip on the local
// profile so the node starts fast. They run with -bench only.

// benchNode is the leader of an in-process cluster with its HTTP API, and
// a license whose cad feature has 256 seats (a hot license) and whose
// viewer is uncounted.
type benchNode struct {
	n   *node.Node
	srv *httptest.Server
	key string
	fc  *fasthttp.Client
}

func newBenchNode(b *testing.B) *benchNode { return newBenchCluster(b, 1) }

// newBenchCluster starts size nodes over loopback TCP (Raft, gossip and
// HTTP), waits for a ready leader and provisions the license through it.
func newBenchCluster(b *testing.B, size int) *benchNode {
	b.Helper()
	addr := func() string {
		a, err := freeport.Addr()
		if err != nil {
			b.Fatal(err)
		}
		return a
	}
	cfgs := make([]*node.Config, size)
	srvs := make([]*httptest.Server, size)
	for i := range cfgs {
		srvs[i] = httptest.NewUnstartedServer(nil)
		cfg := node.DefaultConfig()
		cfg.NodeID, cfg.DataDir, cfg.ClusterToken = fmt.Sprintf("n%d", i+1), filepath.Join(b.TempDir(), "data"), testToken
		cfg.HTTPAddr, cfg.RaftAddr, cfg.GossipAddr = srvs[i].Listener.Addr().String(), addr(), addr()
		cfg.BootstrapExpect, cfg.GossipProfile = size, "local"
		cfgs[i] = cfg
	}
	nodes := make([]*node.Node, size)
	for i, cfg := range cfgs {
		for j, other := range cfgs {
			if j != i {
				cfg.Join = append(cfg.Join, other.GossipAddr)
			}
		}
		n, err := node.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes[i] = n
		srvs[i].Config.Handler = transport.NewServer(transport.Config{Backend: n, AdminToken: testToken})
		srvs[i].Start()
		b.Cleanup(func() {
			srvs[i].Close()
			n.Kill()
		})
	}
	ctx := context.Background()
	leader := -1
	deadline := time.Now().Add(30 * time.Second)
	for leader < 0 {
		for i, n := range nodes {
			if _, err := n.ReadIndex(ctx); err == nil {
				leader = i
			}
		}
		if leader < 0 && time.Now().After(deadline) {
			b.Fatal("no ready leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := nodes[leader]
	p, err := n.CreateProduct(ctx, api.CreateProductRequest{Name: "CAD"})
	if err != nil {
		b.Fatal(err)
	}
	seats := 256
	pol, err := n.CreatePolicy(ctx, api.CreatePolicyRequest{ProductID: p.ID, Name: "floating", LeaseTTLSeconds: 3600,
		Features: []api.Feature{{Name: "cad", Seats: &seats}, {Name: "viewer"}}})
	if err != nil {
		b.Fatal(err)
	}
	lic, err := n.CreateLicense(ctx, api.CreateLicenseRequest{PolicyID: pol.ID, Customer: "ACME"})
	if err != nil {
		b.Fatal(err)
	}
	// The load comes from fasthttp's client: net/http's costs the shared
	// cores as much as the node it measures (bench/driver.go).
	fc := &fasthttp.Client{MaxConnsPerHost: 512, NoDefaultUserAgentHeader: true,
		// Every request here may be repeated (checkouts carry request ids):
		// send it again on a kept-alive connection the server closed.
		RetryIfErr: func(_ *fasthttp.Request, attempts int, err error) (bool, bool) {
			return false, attempts < 2 && (errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF))
		}}
	b.Cleanup(fc.CloseIdleConnections)
	return &benchNode{n: n, srv: srvs[leader], key: lic.Key, fc: fc}
}

// post sends one JSON request and decodes a 200 answer into out.
func (bn *benchNode) post(_ int, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(bn.srv.URL + path)
	req.Header.SetMethod(http.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	if err := bn.fc.DoTimeout(req, resp, 30*time.Second); err != nil {
		return err
	}
	if resp.StatusCode() != http.StatusOK {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode(), resp.Body())
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(resp.Body(), out)
}

// BenchmarkNodeValidateStale is the in-process stale read path of
// POST /v1/validate (the target is < 2 µs): Node.Validate without HTTP.
func BenchmarkNodeValidateStale(b *testing.B) {
	bn := newBenchNode(b)
	ctx := context.Background()
	req := api.ValidateRequest{LicenseKey: bn.key, Feature: "cad"}
	b.ReportAllocs()
	for b.Loop() {
		v, err := bn.n.Validate(ctx, req, api.ConsistencyStale)
		if err != nil || !v.Valid {
			b.Fatalf("validate: %+v, %v", v, err)
		}
	}
}

func BenchmarkNodeValidateStaleParallel(b *testing.B) {
	bn := newBenchNode(b)
	ctx := context.Background()
	req := api.ValidateRequest{LicenseKey: bn.key, Feature: "cad"}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := bn.n.Validate(ctx, req, api.ConsistencyStale); err != nil || !v.Valid {
				b.Errorf("validate: %+v, %v", v, err)
				return
			}
		}
	})
}

// BenchmarkHTTPValidateStale is the same read through HTTP and JSON, from
// 64 concurrent clients.
func BenchmarkHTTPValidateStale(b *testing.B) {
	bn := newBenchNode(b)
	req := api.ValidateRequest{LicenseKey: bn.key, Feature: "cad"}
	b.ReportAllocs()
	b.ResetTimer()
	runConcurrent(b, 64, func(w int) error {
		var v api.ValidateResponse
		if err := bn.post(w, "/v1/validate?consistency=stale", req, &v); err != nil {
			return err
		}
		if !v.Valid {
			return fmt.Errorf("not valid: %+v", v)
		}
		return nil
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
}

// BenchmarkHTTPCheckout is one checkout at a time of an uncounted feature
// (the leases stay): the latency of the write path with nothing queued.
func BenchmarkHTTPCheckout(b *testing.B) {
	bn := newBenchNode(b)
	var res api.LeaseResponse
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := api.CheckoutRequest{LicenseKey: bn.key, Feature: "viewer",
			Holder: api.Holder{Machine: fmt.Sprintf("ws-%d", i), User: "u"}, RequestID: fmt.Sprintf("req-%d", i)}
		if err := bn.post(0, "/v1/checkout", req, &res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTTPSeatCycle is the hot-license job of bench/compare in
// process: C clients, each checking a seat of the 256-seat cad feature out
// and in again through the leader. One op is one cycle (two Raft
// applies). nodes=3 adds replication over loopback (all three nodes in
// this process); nodes=1 is the path without it. cpu-us/op is the CPU
// time the whole process (every node and the clients) spent per cycle: on
// a shared machine it moves less with other work than checkouts/s does.
func BenchmarkHTTPSeatCycle(b *testing.B) {
	for _, size := range []int{1, 3} {
		for _, c := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("nodes=%d/c=%d", size, c), func(b *testing.B) { seatCycle(b, size, c) })
		}
	}
}

func seatCycle(b *testing.B, size, c int) {
	bn := newBenchCluster(b, size)
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	runConcurrent(b, c, func(w int) error {
		i := seq.Add(1)
		var res api.LeaseResponse
		req := api.CheckoutRequest{LicenseKey: bn.key, Feature: "cad",
			Holder: api.Holder{Machine: fmt.Sprintf("ws-%d", i), User: "u"}, RequestID: fmt.Sprintf("req-%d", i)}
		if err := bn.post(w, "/v1/checkout", req, &res); err != nil {
			return err
		}
		return bn.post(w, "/v1/leases/"+res.Lease.ID+"/checkin", api.LicenseKeyRequest{LicenseKey: bn.key}, nil)
	})
	cpu = processCPU() - cpu
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkouts/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
}

// BenchmarkHTTPHeartbeat is C clients heartbeating their own lease through
// the leader of a 3-node cluster. A heartbeat must not cost a Raft entry:
// raft-entries/op reports the log's growth per heartbeat (the leader's
// periodic checkpoint adds a few entries per run, never one per beat).
func BenchmarkHTTPHeartbeat(b *testing.B) {
	for _, c := range []int{1, 64} {
		b.Run(fmt.Sprintf("nodes=3/c=%d", c), func(b *testing.B) {
			bn := newBenchCluster(b, 3)
			leases := make([]string, c)
			for i := range leases {
				var res api.LeaseResponse
				req := api.CheckoutRequest{LicenseKey: bn.key, Feature: "viewer",
					Holder: api.Holder{Machine: fmt.Sprintf("ws-%d", i)}, RequestID: fmt.Sprintf("req-%d", i)}
				if err := bn.post(i, "/v1/checkout", req, &res); err != nil {
					b.Fatal(err)
				}
				leases[i] = res.Lease.ID
			}
			before := bn.n.FSM().AppliedIndex()
			b.ReportAllocs()
			b.ResetTimer()
			runConcurrent(b, c, func(worker int) error {
				var res api.LeaseResponse
				return bn.post(worker, "/v1/leases/"+leases[worker]+"/heartbeat", api.LicenseKeyRequest{LicenseKey: bn.key}, &res)
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
			b.ReportMetric(float64(bn.n.FSM().AppliedIndex()-before)/float64(b.N), "raft-entries/op")
		})
	}
}

// runConcurrent runs op b.N times in total from exactly c goroutines
// (worker numbers 0..c-1) and fails on the first error. RunParallel
// cannot run fewer goroutines than GOMAXPROCS, so its c=1 would not be
// one client.
func runConcurrent(b *testing.B, c int, op func(worker int) error) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, c)
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) && !failed.Load() {
				if err := op(w); err != nil {
					failed.Store(true)
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err, ok := <-errs; ok {
		b.Fatal(err)
	}
}

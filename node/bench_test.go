package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/node"
	"github.com/tallyhq/tally/transport"
)

// Benchmarks of a real single-node node: the in-process stale validation
// read, and the HTTP checkout path through transport's handlers over
// httptest (loopback TCP, JSON, token signing, one Raft apply with its
// fsync). Production timings (DefaultConfig), gossip on the local
// profile so the node starts fast. They run with -bench only.

// benchNode is one node with its HTTP API and a license on it whose cad
// feature has 256 seats (a hot license) and whose viewer is uncounted.
type benchNode struct {
	n   *node.Node
	srv *httptest.Server
	key string
	hc  *http.Client
}

func newBenchNode(b *testing.B) *benchNode {
	b.Helper()
	addr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	srv := httptest.NewUnstartedServer(nil)
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.ClusterToken = "n1", filepath.Join(b.TempDir(), "data"), testToken
	cfg.HTTPAddr, cfg.RaftAddr, cfg.GossipAddr = srv.Listener.Addr().String(), addr(), addr()
	cfg.BootstrapExpect, cfg.GossipProfile = 1, "local"
	n, err := node.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv.Config.Handler = transport.NewServer(transport.Config{Backend: n, AdminToken: testToken})
	srv.Start()
	b.Cleanup(func() {
		srv.Close()
		n.Kill()
	})
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := n.ReadIndex(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the node did not become a ready leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	tr := &http.Transport{MaxIdleConnsPerHost: 512}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchNode{n: n, srv: srv, key: lic.Key, hc: &http.Client{Transport: tr}}
}

// post sends one JSON request and decodes a 200 answer into out.
func (bn *benchNode) post(path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := bn.hc.Post(bn.srv.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
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
	b.SetParallelism(parallelismFor(64))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var v api.ValidateResponse
		for pb.Next() {
			if err := bn.post("/v1/validate?consistency=stale", req, &v); err != nil || !v.Valid {
				b.Errorf("validate: %+v, %v", v, err)
				return
			}
		}
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
		if err := bn.post("/v1/checkout", req, &res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTTPSeatCycle is the hot-license job of bench/compare in
// process: C clients, each checking a seat of the 256-seat cad feature out
// and in again. One op is one cycle (two Raft applies).
func BenchmarkHTTPSeatCycle(b *testing.B) {
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			bn := newBenchNode(b)
			var seq atomic.Int64
			b.SetParallelism(parallelismFor(c))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var res api.LeaseResponse
				for pb.Next() {
					i := seq.Add(1)
					req := api.CheckoutRequest{LicenseKey: bn.key, Feature: "cad",
						Holder: api.Holder{Machine: fmt.Sprintf("ws-%d", i), User: "u"}, RequestID: fmt.Sprintf("req-%d", i)}
					if err := bn.post("/v1/checkout", req, &res); err != nil {
						b.Error(err)
						return
					}
					if err := bn.post("/v1/leases/"+res.Lease.ID+"/checkin", api.LicenseKeyRequest{LicenseKey: bn.key}, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkouts/s")
		})
	}
}

// parallelismFor makes RunParallel run about c goroutines.
func parallelismFor(c int) int {
	return max(1, c/runtime.GOMAXPROCS(0))
}

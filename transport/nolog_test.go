package transport_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/internal/syncbuf"
	"github.com/tallyhq/tally/node"
	"github.com/tallyhq/tally/transport"
)

// TestSecretsNeverLogged runs the requests that carry secrets (the admin
// token, license keys, lease tokens) through a three-node cluster logging
// at debug level, through forwarding, linearizable reads, refusals and a
// leader failover, and checks that none of the secrets is in the log.
func TestSecretsNeverLogged(t *testing.T) {
	const (
		adminToken = "admin-token-7f3c9a1e5b2d4f6a8c0e"
		wrongToken = "wrong-token-1a2b3c4d5e6f7a8b9c0d"
		unknownKey = "TLY-ZZZZZZ-YYYYYY-XXXXXX-WWWWWW-VVVVVVVV"
	)
	logs := &syncbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := startCluster(t, 3, adminToken, logger)
	secrets := []string{adminToken, wrongToken, unknownKey}

	f := c.follower(t)
	post := func(url, auth, body string) (int, []byte) { return call(t, "POST", url, auth, body) }
	var prd api.Product
	decodeOK(t, 201, &prd)(post(f+"/v1/products", adminToken, `{"name":"CAD"}`))
	var pol api.Policy
	decodeOK(t, 201, &pol)(post(f+"/v1/policies", adminToken,
		`{"product_id":"`+prd.ID+`","name":"floating","features":[{"name":"cad","seats":2}],"lease_ttl_seconds":30,"max_borrow_hours":8}`))
	var lic api.License
	decodeOK(t, 201, &lic)(post(f+"/v1/licenses", adminToken, `{"policy_id":"`+pol.ID+`","customer":"Acme"}`))
	key := lic.Key
	secrets = append(secrets, key)

	checkout := `{"license_key":"` + key + `","feature":"cad","holder":{"machine":"m1","user":"u"},"request_id":"r-1"}`
	var lease api.LeaseResponse
	decodeOK(t, 200, &lease)(post(f+"/v1/checkout", "", checkout))
	decodeOK(t, 200, &lease)(post(f+"/v1/checkout", "", checkout)) // replayed request_id
	secrets = append(secrets, lease.Token)
	keyBody := `{"license_key":"` + key + `"}`
	decodeOK(t, 200, &lease)(post(f+"/v1/leases/"+lease.Lease.ID+"/heartbeat", "", keyBody))
	secrets = append(secrets, lease.Token)
	var borrowed api.LeaseResponse
	decodeOK(t, 200, &borrowed)(post(f+"/v1/checkout", "",
		`{"license_key":"`+key+`","feature":"cad","holder":{"machine":"m2"},"request_id":"r-2","borrow_hours":2}`))
	secrets = append(secrets, borrowed.Token)
	for _, q := range []string{"stale", "linearizable"} {
		decodeOK(t, 200, nil)(post(f+"/v1/validate?consistency="+q, "", `{"license_key":"`+key+`","feature":"cad","machine":"m1"}`))
	}
	decodeOK(t, 200, nil)(call(t, "GET", f+"/v1/licenses", adminToken, ""))
	decodeOK(t, 200, nil)(call(t, "GET", f+"/v1/audit?consistency=stale", adminToken, ""))
	decodeOK(t, 200, nil)(call(t, "POST", f+"/v1/licenses/"+lic.ID+"/export", adminToken, `{"machine":"fp-1","until":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`))

	// Refusals: the secret is wrong, or right in a request that fails.
	for _, tc := range []struct {
		method, path, auth, body string
		status                   int
	}{
		{"POST", "/v1/checkout", "", strings.Replace(checkout, key, unknownKey, 1), 401},
		{"POST", "/v1/validate", "", `{"license_key":"` + unknownKey + `"}`, 401},
		{"POST", "/v1/leases/" + lease.Lease.ID + "/heartbeat", "", `{"license_key":"` + unknownKey + `"}`, 401},
		{"POST", "/v1/checkout", "", `{"license_key":"` + key + `","feature":"nope","holder":{"machine":"m"}}`, 403},
		{"POST", "/v1/checkout", "", `{"license_key":"` + key + `","feature":"cad"}`, 400},
		{"POST", "/v1/checkout", "", `{"license_key":"` + key + `","bogus":1}`, 400},
		{"POST", "/v1/leases/lse_none/checkin", "", keyBody, 404},
		{"GET", "/v1/licenses", wrongToken, "", 401},
		{"GET", "/v1/licenses/lic_none", adminToken, "", 404},
		{"POST", "/v1/products", adminToken, `{"name":` + strings.Repeat("x", 10), 400},
	} {
		if status, body := call(t, tc.method, f+tc.path, tc.auth, tc.body); status != tc.status {
			t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, tc.status)
		}
	}
	decodeOK(t, 200, nil)(post(f+"/v1/leases/"+lease.Lease.ID+"/checkin", "", keyBody))

	// A failover: followers forward to a dead leader until they learn the
	// new one, and the new leader re-arms the leases.
	c.killLeader(t)
	g := c.follower(t)
	eventually(t, 10*time.Second, "a checkout after the failover", func() bool {
		status, _ := post(g+"/v1/checkout", "", `{"license_key":"`+key+`","feature":"cad","holder":{"machine":"m3"},"request_id":"r-3"}`)
		return status == 200
	})
	decodeOK(t, 200, nil)(post(g+"/v1/validate?consistency=linearizable", "", keyBody))
	c.stop()

	out := logs.String()
	if !strings.Contains(out, "leadership established") {
		t.Fatalf("the nodes' debug log was not captured:\n%s", out)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the log holds the secret %q", s)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", out)
	}
}

type logCluster struct {
	nodes []*node.Node
	srvs  []*http.Server
	urls  []string
	dead  []bool
}

// startCluster runs n nodes in this process on loopback ports chosen by
// the system, with every log line going to logger.
func startCluster(t *testing.T, n int, adminToken string, logger *slog.Logger) *logCluster {
	t.Helper()
	c := &logCluster{dead: make([]bool, n)}
	t.Cleanup(c.stop)
	var join []string
	for i := 0; i < n; i++ {
		id := "n" + string(rune('1'+i))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := node.DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 200*time.Millisecond, 200*time.Millisecond
		cfg.LeaderLeaseTimeout, cfg.CommitTimeout = 100*time.Millisecond, 5*time.Millisecond
		cfg.ReapInterval, cfg.CheckpointInterval, cfg.ReconcileInterval = 10*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
		cfg.GossipProfile = "local"
		cfg.NodeID, cfg.DataDir, cfg.ClusterToken = id, filepath.Join(t.TempDir(), "data"), adminToken
		cfg.HTTPAddr, cfg.RaftAddr, cfg.GossipAddr = ln.Addr().String(), "127.0.0.1:0", "127.0.0.1:0"
		cfg.BootstrapExpect, cfg.Join = n, join
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Logger = reg, logger
		nd, err := node.New(cfg)
		if err != nil {
			_ = ln.Close()
			t.Fatalf("start %s: %v", id, err)
		}
		join = append(join, nd.GossipAddr())
		srv := &http.Server{Handler: transport.NewServer(transport.Config{
			Backend: nd, AdminToken: adminToken, Registerer: reg, Gatherer: reg, Logger: logger,
		})}
		go func() { _ = srv.Serve(ln) }()
		c.nodes, c.srvs, c.urls = append(c.nodes, nd), append(c.srvs, srv), append(c.urls, "http://"+ln.Addr().String())
	}
	c.follower(t)
	return c
}

// follower waits for a leader that serves writes and returns the URL of a
// live node that is not it, so that requests sent there are forwarded.
func (c *logCluster) follower(t *testing.T) string {
	t.Helper()
	var url string
	eventually(t, 10*time.Second, "a leader and a follower", func() bool {
		leader := c.leader()
		if leader < 0 {
			return false
		}
		if _, err := c.nodes[leader].ReadIndex(t.Context()); err != nil {
			return false
		}
		for i := range c.nodes {
			if i != leader && !c.dead[i] {
				url = c.urls[i]
				return true
			}
		}
		return false
	})
	return url
}

func (c *logCluster) leader() int {
	for i, nd := range c.nodes {
		if !c.dead[i] && nd.Status(false).State == "leader" {
			return i
		}
	}
	return -1
}

func (c *logCluster) killLeader(t *testing.T) {
	t.Helper()
	i := c.leader()
	if i < 0 {
		t.Fatal("no leader to kill")
	}
	_ = c.srvs[i].Close()
	c.nodes[i].Kill()
	c.dead[i] = true
}

func (c *logCluster) stop() {
	for i := range c.nodes {
		if !c.dead[i] {
			_ = c.srvs[i].Close()
			_ = c.nodes[i].Shutdown()
			c.dead[i] = true
		}
	}
}

// call sends one request, retrying a 503 as the SDK does: on a loaded
// machine the cluster may change leader during the test.
func call(t *testing.T, method, url, auth, body string) (status int, raw []byte) {
	t.Helper()
	eventually(t, 10*time.Second, "an answer other than 503 to "+method+" "+url, func() bool {
		req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ = io.ReadAll(resp.Body)
		status = resp.StatusCode
		return status != http.StatusServiceUnavailable
	})
	return status, raw
}

// decodeOK returns a check of an answer: the status must be want, and the
// body decodes into v (if not nil).
func decodeOK(t *testing.T, want int, v any) func(int, []byte) {
	t.Helper()
	return func(status int, body []byte) {
		t.Helper()
		if status != want {
			t.Fatalf("status %d %s, want %d", status, body, want)
		}
		if v != nil {
			if err := json.Unmarshal(body, v); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
		}
	}
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

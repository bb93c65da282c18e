package client

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// fakeNode is an httptest server that records what it was asked.
type fakeNode struct {
	*httptest.Server
	mu       sync.Mutex
	hits     map[string]int
	requests []api.CheckoutRequest
	auth     []string
}

func newFakeNode(t *testing.T, h func(f *fakeNode, w http.ResponseWriter, r *http.Request)) *fakeNode {
	t.Helper()
	f := &fakeNode{hits: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.hits[r.Method+" "+r.URL.Path]++
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		if r.URL.Path == "/v1/checkout" {
			var req api.CheckoutRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			f.requests = append(f.requests, req)
		}
		f.mu.Unlock()
		h(f, w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[key]
}

func (f *fakeNode) checkouts() []api.CheckoutRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.CheckoutRequest(nil), f.requests...)
}

func (f *fakeNode) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.hits {
		n += v
	}
	return n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code, msg string) {
	writeJSON(w, api.StatusOf(code), api.ErrorResponse{Error: api.Error{Code: code, Message: msg}})
}

// resetConn drops the connection without an answer, after the request body
// was read: the node may have processed it.
func resetConn(t *testing.T, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Error("response writer cannot hijack")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// refusedAddr returns an address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func leaseResponse(id string, ttl time.Duration) api.LeaseResponse {
	now := time.Now().UTC()
	return api.LeaseResponse{
		Lease: api.Lease{ID: id, LicenseID: "lic1", Feature: "cad", Holder: api.Holder{Machine: "m1"},
			IssuedAt: now, ExpiresAt: now.Add(ttl)},
		Token: "tok-" + now.Format(time.RFC3339Nano),
	}
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewRejectsBadAddrs(t *testing.T) {
	for _, addrs := range [][]string{nil, {""}, {"ftp://x:1"}, {"host-without-port"}, {"http://h:1/path"}} {
		if _, err := New(Config{Addrs: addrs}); err == nil {
			t.Errorf("New(%q): want error", addrs)
		}
	}
	c := newTestClient(t, Config{Addrs: []string{"127.0.0.1:7101", "https://n2:7101/", "http://n3:80"}})
	want := []string{"http://127.0.0.1:7101", "https://n2:7101", "http://n3:80"}
	if got := c.Addrs(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Addrs = %q, want %q", got, want)
	}
}

func TestFailoverAcrossThreeNodes(t *testing.T) {
	down := refusedAddr(t)
	busy := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		writeErr(w, api.CodeNoLeader, "election in progress")
	})
	good := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, leaseResponse("L1", time.Minute))
	})
	c := newTestClient(t, Config{Addrs: []string{down, busy.URL, good.URL}})

	resp, err := c.Checkout(context.Background(), api.CheckoutRequest{LicenseKey: "K", Feature: "cad"})
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	if resp.Lease.ID != "L1" {
		t.Errorf("lease id = %q, want L1", resp.Lease.ID)
	}
	if busy.count("POST /v1/checkout") != 1 || good.count("POST /v1/checkout") != 1 {
		t.Errorf("hits busy=%d good=%d, want 1 and 1", busy.total(), good.total())
	}
	if b, g := busy.checkouts(), good.checkouts(); len(b) != 1 || len(g) != 1 || b[0].RequestID == "" || b[0].RequestID != g[0].RequestID {
		t.Errorf("request ids differ across nodes: %+v vs %+v", b, g)
	}

	// The next call starts with the node that last answered.
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("Status: %v", err)
	}
	if busy.total() != 1 || good.count("GET /v1/status") != 1 {
		t.Errorf("second call did not go straight to the good node: busy=%d good=%d", busy.total(), good.total())
	}
}

func TestCreateRetriesOnlyWhenNotProcessed(t *testing.T) {
	good := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, api.Product{ID: "p1", Name: "CAD"})
	})
	// Refused connection: provably not processed, so the create fails over.
	c := newTestClient(t, Config{Addrs: []string{refusedAddr(t), good.URL}})
	p, err := c.CreateProduct(context.Background(), api.CreateProductRequest{Name: "CAD"})
	if err != nil || p.ID != "p1" {
		t.Fatalf("CreateProduct = %+v, %v", p, err)
	}

	// A reset after the node read the request may have created it: no retry.
	resetting := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) { resetConn(t, w) })
	c = newTestClient(t, Config{Addrs: []string{resetting.URL, good.URL}})
	if _, err := c.CreateProduct(context.Background(), api.CreateProductRequest{Name: "CAD"}); err == nil {
		t.Fatal("CreateProduct after a reset: want error")
	}
	if n := resetting.total(); n != 1 {
		t.Errorf("resetting node hit %d times, want 1", n)
	}
	if n := good.count("POST /v1/products"); n != 1 {
		t.Errorf("good node hit %d times for products, want only the first test's 1", n)
	}
}

func TestCheckoutReusesRequestIDOnRetry(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		n := len(f.requests)
		f.mu.Unlock()
		if n <= 2 {
			resetConn(t, w) // the node may have taken the seat; the client cannot know
			return
		}
		writeJSON(w, 200, leaseResponse("L1", time.Minute))
	})
	c := newTestClient(t, Config{Addrs: []string{node.URL}})
	if _, err := c.Checkout(context.Background(), api.CheckoutRequest{LicenseKey: "K", Feature: "cad"}); err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	reqs := node.checkouts()
	if len(reqs) != 3 {
		t.Fatalf("got %d checkout attempts, want 3", len(reqs))
	}
	id := reqs[0].RequestID
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("request id %q is not a v4 UUID", id)
	}
	for i, r := range reqs {
		if r.RequestID != id {
			t.Errorf("attempt %d request id %q, want %q", i, r.RequestID, id)
		}
	}

	// A caller's own id is kept.
	if _, err := c.Checkout(context.Background(), api.CheckoutRequest{LicenseKey: "K", Feature: "cad", RequestID: "mine"}); err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	if reqs := node.checkouts(); reqs[len(reqs)-1].RequestID != "mine" {
		t.Errorf("request id %q, want mine", reqs[len(reqs)-1].RequestID)
	}
}

func TestDecodedErrorsMatchSentinels(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/checkout":
			writeErr(w, api.CodeNoSeatsAvailable, "all 3 seats of cad are taken")
		case "/v1/licenses/nope":
			writeErr(w, api.CodeNotFound, "no license nope")
		default:
			w.Header().Set("Retry-After", "2")
			writeErr(w, api.CodeNoLeader, "no leader")
		}
	})
	c := newTestClient(t, Config{Addrs: []string{node.URL}, RetryFor: 100 * time.Millisecond})
	ctx := context.Background()

	_, err := c.Checkout(ctx, api.CheckoutRequest{LicenseKey: "K", Feature: "cad"})
	if !errors.Is(err, api.ErrNoSeats) {
		t.Errorf("checkout err = %v, want no_seats_available", err)
	}
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Message != "all 3 seats of cad are taken" {
		t.Errorf("checkout err = %#v, want *api.Error with the server's message", err)
	}
	if n := node.count("POST /v1/checkout"); n != 1 {
		t.Errorf("409 was retried: %d attempts", n)
	}
	if _, err := c.License(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("license err = %v, want not_found", err)
	}
	// 503 with a Retry-After longer than the budget: one attempt, then the
	// decoded error.
	_, err = c.Licenses(ctx)
	if !errors.Is(err, api.ErrNoLeader) || !errors.As(err, &ae) || ae.RetryAfter != 2 {
		t.Errorf("licenses err = %#v, want no_leader with RetryAfter 2", err)
	}
	if n := node.count("GET /v1/licenses"); n != 1 {
		t.Errorf("%d attempts within a budget shorter than Retry-After, want 1", n)
	}
}

// A node's Retry-After holds the next attempt to that node back. This is a
// lower bound on the wait, not a speed measurement.
func TestWaitsForRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	node := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		first := len(arrivals) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			writeErr(w, api.CodeNoLeader, "election in progress")
			return
		}
		writeJSON(w, 200, api.Status{NodeID: "n1", State: "leader"})
	})
	c := newTestClient(t, Config{Addrs: []string{node.URL}})
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("Status: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 2 {
		t.Fatalf("%d attempts, want 2", len(arrivals))
	}
	if gap := arrivals[1].Sub(arrivals[0]); gap < 990*time.Millisecond {
		t.Errorf("second attempt %s after the first, want at least the 1 s of Retry-After", gap)
	}
}

func TestContextEndsRetries(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		writeErr(w, api.CodeNoLeader, "no leader")
	})
	c := newTestClient(t, Config{Addrs: []string{node.URL}, RetryFor: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Products(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, api.ErrNoLeader) {
		t.Errorf("err = %v, want deadline exceeded wrapping no_leader", err)
	}
	if node.total() < 2 {
		t.Errorf("only %d attempts before the deadline", node.total())
	}
}

func TestNodePins(t *testing.T) {
	busy := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		writeErr(w, api.CodeNoLeader, "no leader")
	})
	good := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.Status{NodeID: "n2", State: "leader"})
	})
	c := newTestClient(t, Config{Addrs: []string{busy.URL, good.URL}, Token: "secret", RetryFor: 150 * time.Millisecond})

	_, err := c.Node(busy.URL).Status(context.Background())
	if !errors.Is(err, api.ErrNoLeader) {
		t.Errorf("pinned status err = %v, want no_leader", err)
	}
	if good.total() != 0 {
		t.Errorf("pinned client failed over: good node hit %d times", good.total())
	}
	if busy.total() < 2 {
		t.Errorf("pinned client did not retry its own node: %d attempts", busy.total())
	}
	st, err := c.Node(strings.TrimPrefix(good.URL, "http://")).Status(context.Background())
	if err != nil || st.NodeID != "n2" {
		t.Errorf("pinned status = %+v, %v", st, err)
	}
	good.mu.Lock()
	if good.auth[0] != "Bearer secret" {
		t.Errorf("pinned client sent Authorization %q", good.auth[0])
	}
	good.mu.Unlock()
	if _, err := c.Node("not a url:x").Status(context.Background()); err == nil {
		t.Error("Node with a bad address: want error")
	}
}

func TestSnapshotStreams(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte("snapshot-bytes"))
	})
	c := newTestClient(t, Config{Addrs: []string{node.URL}})
	var b strings.Builder
	if err := c.Snapshot(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if b.String() != "snapshot-bytes" {
		t.Errorf("snapshot = %q", b.String())
	}
}

package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// With quorum lost, the error says what every node said: the one node that
// answered no_leader is not hidden behind the last connection refused.
func TestEveryNodeFailedNamesEachNode(t *testing.T) {
	leaderless := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		writeErr(w, api.CodeNoLeader, "no leader elected")
	})
	down1, down2 := refusedAddr(t), refusedAddr(t)
	c := newTestClient(t, Config{Addrs: []string{leaderless.URL, down1, down2}, RetryFor: 300 * time.Millisecond})

	_, err := c.Licenses(context.Background())
	if err == nil {
		t.Fatal("Licenses: want an error")
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	up := strings.TrimPrefix(leaderless.URL, "http://")
	for _, want := range []string{
		"no node answered",
		up + " no_leader: no leader elected",
		down1 + ", " + down2 + " connection refused",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	var ae *api.Error
	if !errors.Is(err, api.ErrNoLeader) || !errors.As(err, &ae) || ae.Code != api.CodeNoLeader {
		t.Errorf("err = %v: errors.Is/As do not find the node's no_leader", err)
	}
	var ne *NodesError
	if !errors.As(err, &ne) || len(ne.Nodes) != 3 {
		t.Errorf("err = %#v, want a *NodesError of 3 nodes", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("err = %v: the refused connections are not reachable with errors.Is", err)
	}

	// A context that ends keeps the summary too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c = newTestClient(t, Config{Addrs: []string{leaderless.URL, down1}, RetryFor: time.Hour})
	_, err = c.Licenses(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, api.ErrNoLeader) || !strings.Contains(err.Error(), down1+" connection refused") {
		t.Errorf("err = %v, want deadline exceeded with every node's failure", err)
	}

	// One node: its own error, as before.
	c = newTestClient(t, Config{Addrs: []string{down1}, RetryFor: 100 * time.Millisecond})
	_, err = c.Licenses(context.Background())
	var te *transportError
	if !errors.As(err, &te) || errors.As(err, &ne) {
		t.Errorf("one node: err = %#v, want its transport error", err)
	}
}

// countConns counts the connections a test server accepts.
func countConns(srv *httptest.Server) *atomic.Int32 {
	var n atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

// https:// to a plain HTTP node can never work: the client says so at once
// instead of retrying for its whole budget.
func TestHTTPSToPlainNodeFailsFast(t *testing.T) {
	plain := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.Status{NodeID: "n1"})
	}))
	conns := countConns(plain)
	plain.Start()
	t.Cleanup(plain.Close)
	wrong := "https://" + plain.Listener.Addr().String()

	// The context only guards the test; RetryFor would allow an hour.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newTestClient(t, Config{Addrs: []string{wrong}, RetryFor: time.Hour})
	_, err := c.Status(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "speaks plain HTTP") {
		t.Fatalf("err = %v, want an immediate protocol error", err)
	}
	t.Logf("error: %s", err)
	if !errors.Is(err, http.ErrSchemeMismatch) {
		t.Errorf("err = %v does not wrap http.ErrSchemeMismatch", err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections to the plain node, want 1", n)
	}

	// With another node that works, the call goes there, even a create
	// (the handshake failed, so nothing was sent).
	good := newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, api.Product{ID: "p1"})
	})
	c = newTestClient(t, Config{Addrs: []string{wrong, good.URL}, RetryFor: time.Hour})
	if p, err := c.CreateProduct(ctx, api.CreateProductRequest{Name: "CAD"}); err != nil || p.ID != "p1" {
		t.Fatalf("CreateProduct = %+v, %v", p, err)
	}

	// With every other node down, it still ends once each was tried and
	// the rest are refused for the budget.
	down := refusedAddr(t)
	c = newTestClient(t, Config{Addrs: []string{wrong, down}, RetryFor: 300 * time.Millisecond})
	_, err = c.Status(ctx)
	if err == nil || !strings.Contains(err.Error(), wrong+" the node speaks plain HTTP") || !strings.Contains(err.Error(), down+" connection refused") {
		t.Errorf("err = %v, want both nodes named", err)
	}
}

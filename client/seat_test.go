package client

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// seatServer answers checkout and checkin, and heartbeats with hb.
func seatServer(t *testing.T, ttl time.Duration, hb func(w http.ResponseWriter)) *fakeNode {
	return newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/checkout":
			writeJSON(w, 200, leaseResponse("L1", ttl))
		case "/v1/leases/L1/heartbeat":
			hb(w)
		case "/v1/leases/L1/checkin":
			writeJSON(w, 200, struct{}{})
		default:
			writeErr(w, api.CodeNotFound, r.URL.Path)
		}
	})
}

func TestSeatHeartbeatsThenReportsLoss(t *testing.T) {
	var revoked atomic.Bool
	node := seatServer(t, 300*time.Millisecond, func(w http.ResponseWriter) {
		if revoked.Load() {
			writeErr(w, api.CodeLeaseExpired, "lease L1 was revoked")
			return
		}
		writeJSON(w, 200, leaseResponse("L1", 300*time.Millisecond))
	})
	c := newTestClient(t, Config{Addrs: []string{node.URL}})
	seat, err := c.AcquireSeat(context.Background(), api.CheckoutRequest{LicenseKey: "K", Feature: "cad"})
	if err != nil {
		t.Fatal(err)
	}
	first := seat.Lease()
	firstToken := seat.Token()
	waitFor(t, 5*time.Second, "two heartbeats", func() bool { return node.count("POST /v1/leases/L1/heartbeat") >= 2 })
	waitFor(t, 5*time.Second, "expires_at to move", func() bool { return seat.Lease().ExpiresAt.After(first.ExpiresAt) })
	if seat.Token() == firstToken {
		t.Error("token did not change with heartbeats")
	}
	select {
	case err := <-seat.Lost():
		t.Fatalf("seat lost while heartbeats succeed: %v", err)
	default:
	}

	revoked.Store(true)
	select {
	case err, ok := <-seat.Lost():
		var ae *api.Error
		if !ok || !errors.As(err, &ae) || ae.Code != api.CodeLeaseExpired || ae.Message != "lease L1 was revoked" {
			t.Fatalf("Lost() = %v, %v; want the server's lease_expired", err, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("loss not reported")
	}
	if _, ok := <-seat.Lost(); ok {
		t.Error("Lost() not closed after reporting")
	}
	if err := seat.Close(context.Background()); err != nil {
		t.Errorf("Close of a lost seat: %v", err)
	}
	if n := node.count("POST /v1/leases/L1/checkin"); n != 0 {
		t.Errorf("lost seat was checked in %d times", n)
	}
}

func TestSeatLostWhenExpiresWithoutHeartbeat(t *testing.T) {
	node := seatServer(t, 300*time.Millisecond, func(w http.ResponseWriter) {
		writeErr(w, api.CodeInternal, "disk on fire")
	})
	c := newTestClient(t, Config{Addrs: []string{node.URL}})
	seat, err := c.AcquireSeat(context.Background(), api.CheckoutRequest{LicenseKey: "K", Feature: "cad"})
	if err != nil {
		t.Fatal(err)
	}
	defer seat.Close(context.Background())
	expires := seat.Lease().ExpiresAt
	select {
	case err := <-seat.Lost():
		if !errors.Is(err, api.ErrLeaseExpired) {
			t.Errorf("Lost() = %v, want lease_expired", err)
		}
		if time.Now().Before(expires) {
			t.Errorf("loss reported at %s, before expires_at %s", time.Now(), expires)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("loss not reported")
	}
	if n := node.count("POST /v1/leases/L1/heartbeat"); n < 2 {
		t.Errorf("transient heartbeat errors retried only %d times", n)
	}
}

func TestSeatCloseChecksIn(t *testing.T) {
	node := seatServer(t, time.Minute, func(w http.ResponseWriter) {
		writeJSON(w, 200, leaseResponse("L1", time.Minute))
	})
	c := newTestClient(t, Config{Addrs: []string{node.URL}})
	seat, err := c.AcquireSeat(context.Background(), api.CheckoutRequest{LicenseKey: "K", Feature: "cad"})
	if err != nil {
		t.Fatal(err)
	}
	if seat.Lease().ID != "L1" {
		t.Errorf("lease = %+v", seat.Lease())
	}
	if err := seat.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := node.count("POST /v1/leases/L1/checkin"); n != 1 {
		t.Errorf("checkin hit %d times, want 1", n)
	}
	if err, ok := <-seat.Lost(); ok {
		t.Errorf("Lost() after Close gave %v, want closed", err)
	}
	if err := seat.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := node.count("POST /v1/leases/L1/checkin"); n != 1 {
		t.Errorf("second Close checked in again: %d", n)
	}
}

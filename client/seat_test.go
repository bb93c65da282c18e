package client

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/token"
)

const eventTimeout = 10 * time.Second

func cadRequest() api.CheckoutRequest {
	return api.CheckoutRequest{LicenseKey: "K", Feature: "cad"}
}

func acquire(t *testing.T, c *Client, opts ...SeatOption) *Seat {
	t.Helper()
	s, err := c.AcquireSeat(context.Background(), cadRequest(), opts...)
	if err != nil {
		t.Fatalf("AcquireSeat: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// nextEvent waits for the seat's next event.
func nextEvent(t *testing.T, s *Seat) SeatEvent {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		if !ok {
			t.Fatal("Events closed, want an event")
		}
		return ev
	case <-time.After(eventTimeout):
		t.Fatalf("no seat event within %s (state %s)", eventTimeout, s.State())
	}
	return SeatEvent{}
}

// noEvent fails if an event is waiting.
func noEvent(t *testing.T, s *Seat) {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		t.Fatalf("unexpected seat event %+v (open %v)", ev, ok)
	default:
	}
}

func TestSeatSurvivesNodeLossAndNewLeaderKey(t *testing.T) {
	fc := newFakeCluster(t, 2, 1, 1500*time.Millisecond)
	c := newTestClient(t, Config{Addrs: fc.addrs()})
	seat := acquire(t, c)
	if ev := nextEvent(t, seat); ev.State != SeatHeld || ev.Lease.ID != "L1" {
		t.Fatalf("first event %+v, want held L1", ev)
	}
	if got := kidOf(t, seat.Token()); got != fc.signers[0].KeyID() {
		t.Fatalf("token signed by %s, want node 0's key", got)
	}
	h := seat.Lease().Holder
	if fp, _ := MachineFingerprint(); h.Machine != fp || h.Hostname == "" || h.Process == "" {
		t.Errorf("holder not filled in: %+v", h)
	}
	waitFor(t, eventTimeout, "two heartbeats through node 0", func() bool {
		return fc.nodes[0].count("POST /v1/leases/L1/heartbeat") >= 2
	})

	fc.kill(0) // node 1 leads now and signs with a key the Seat has not seen
	waitFor(t, eventTimeout, "two heartbeats through node 1", func() bool {
		return fc.nodes[1].count("POST /v1/leases/L1/heartbeat") >= 2
	})
	if got := kidOf(t, seat.Token()); got != fc.signers[1].KeyID() {
		t.Errorf("token after failover signed by %s, want node 1's key %s", got, fc.signers[1].KeyID())
	}
	if n := fc.keyFetches(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (once, then once for the new key)", n)
	}
	if seat.State() != SeatHeld || seat.Lease().ID != "L1" {
		t.Errorf("after failover: state %s lease %s, want held L1", seat.State(), seat.Lease().ID)
	}
	noEvent(t, seat)
	if reqs := fc.checkouts(); len(reqs) != 1 {
		t.Errorf("%d checkouts, want 1", len(reqs))
	}
}

func TestSeatEndsWhenRevokedOrRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(fc *fakeCluster)
		want  error
	}{
		{"revoked", func(fc *fakeCluster) { fc.revoke("L1") }, api.ErrLeaseExpired},
		{"license suspended", func(fc *fakeCluster) {
			fc.set(func(fc *fakeCluster) { fc.hbCode = api.CodeLicenseSuspended })
		}, api.ErrLicenseSuspended},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeCluster(t, 1, 1, time.Second)
			c := newTestClient(t, Config{Addrs: fc.addrs()})
			seat := acquire(t, c)
			nextEvent(t, seat)
			tc.apply(fc)
			ev := nextEvent(t, seat)
			if ev.State != SeatEnded || !errors.Is(ev.Err, tc.want) || !errors.Is(seat.Err(), tc.want) {
				t.Fatalf("event %+v, want ended with %v", ev, tc.want)
			}
			if _, ok := <-seat.Events(); ok {
				t.Error("Events not closed after ended")
			}
			if err := seat.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
			if n := fc.count("POST /v1/leases/L1/checkin"); n != 0 {
				t.Errorf("ended seat checked in %d times", n)
			}
			if n := len(fc.checkouts()); n != 1 {
				t.Errorf("%d checkouts, want 1: an ended seat is not taken back", n)
			}
		})
	}
}

func TestSeatExpiredIsRetakenWithNewRequestID(t *testing.T) {
	fc := newFakeCluster(t, 1, 1, 600*time.Millisecond)
	c := newTestClient(t, Config{Addrs: fc.addrs()})
	seat := acquire(t, c)
	nextEvent(t, seat)
	first := seat.Lease()

	fc.set(func(fc *fakeCluster) { fc.hbCode = api.CodeNoLeader }) // an outage longer than the TTL
	ev := nextEvent(t, seat)
	if ev.State != SeatLost || ev.Lease.ID != first.ID || !errors.Is(ev.Err, api.ErrLeaseExpired) {
		t.Fatalf("event %+v, want lost L1 with lease_expired", ev)
	}
	if time.Now().Before(first.ExpiresAt) {
		t.Errorf("loss reported before expires_at %s", first.ExpiresAt)
	}
	fc.set(func(fc *fakeCluster) { fc.hbCode = "" }) // back; the cluster expired L1 meanwhile

	ev = nextEvent(t, seat)
	if ev.State != SeatHeld || ev.Lease.ID == first.ID || ev.Err != nil {
		t.Fatalf("event %+v, want held with a new lease", ev)
	}
	if n := fc.count("POST /v1/leases/L1/heartbeat"); n < 2 {
		t.Errorf("lost lease heartbeated %d times, want retries and one try after the outage", n)
	}
	reqs := fc.checkouts()
	if len(reqs) != 2 || reqs[0].RequestID == reqs[1].RequestID || reqs[1].RequestID == "" {
		t.Fatalf("checkouts %+v, want two with different request ids", reqs)
	}
	if live := fc.live(); len(live) != 1 || live[0] != ev.Lease.ID {
		t.Errorf("live leases %v, want only %s", live, ev.Lease.ID)
	}
	if seat.State() != SeatHeld || seat.Lease().ID != ev.Lease.ID {
		t.Errorf("state %s lease %s", seat.State(), seat.Lease().ID)
	}
}

func TestSeatRegainsTheLeaseTheClusterKept(t *testing.T) {
	fc := newFakeCluster(t, 1, 1, 600*time.Millisecond)
	fc.set(func(fc *fakeCluster) { fc.noExpiry = true })
	c := newTestClient(t, Config{Addrs: fc.addrs()})
	seat := acquire(t, c)
	nextEvent(t, seat)

	fc.set(func(fc *fakeCluster) { fc.hbCode = api.CodeInternal })
	if ev := nextEvent(t, seat); ev.State != SeatLost {
		t.Fatalf("event %+v, want lost", ev)
	}
	fc.set(func(fc *fakeCluster) { fc.hbCode = "" })
	if ev := nextEvent(t, seat); ev.State != SeatHeld || ev.Lease.ID != "L1" {
		t.Fatalf("event %+v, want held L1 again", ev)
	}
	if n := len(fc.checkouts()); n != 1 {
		t.Errorf("%d checkouts, want 1: the kept lease needs none", n)
	}
}

func TestSeatWaitsForAFreeSeat(t *testing.T) {
	fc := newFakeCluster(t, 1, 1, time.Minute)
	c := newTestClient(t, Config{Addrs: fc.addrs()})
	other, err := c.Checkout(context.Background(), api.CheckoutRequest{LicenseKey: "K", Feature: "cad", Holder: api.Holder{Machine: "m2"}})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := c.AcquireSeat(context.Background(), cadRequest()); !errors.Is(err, api.ErrNoSeats) {
		t.Fatalf("AcquireSeat without waiting = %v, want no_seats_available", err)
	}
	if n := len(fc.checkouts()); n != 2 {
		t.Fatalf("%d checkouts, want 2: a 409 without WaitForSeat is not retried", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = c.AcquireSeat(ctx, cadRequest(), WaitForSeat())
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, api.ErrNoSeats) {
		t.Fatalf("waiting AcquireSeat past its deadline = %v, want deadline exceeded and no_seats_available", err)
	}

	type result struct {
		seat *Seat
		err  error
	}
	got := make(chan result, 1)
	waiter := cadRequest()
	waiter.Holder.User = "waiter" // tells its checkouts from the timed-out one's, which may land late
	waited := func() []api.CheckoutRequest {
		var out []api.CheckoutRequest
		for _, r := range fc.checkouts() {
			if r.Holder.User == "waiter" {
				out = append(out, r)
			}
		}
		return out
	}
	go func() {
		s, err := c.AcquireSeat(context.Background(), waiter, WaitForSeat())
		got <- result{s, err}
	}()
	waitFor(t, eventTimeout, "two refused checkouts", func() bool { return len(waited()) >= 2 })
	if err := c.Checkin(context.Background(), other.Lease.ID, "K"); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-got:
	case <-time.After(eventTimeout):
		t.Fatal("AcquireSeat still waiting after the seat freed")
	}
	if r.err != nil {
		t.Fatalf("AcquireSeat: %v", r.err)
	}
	defer r.seat.Close(context.Background())
	reqs := waited()
	for _, req := range reqs {
		if req.RequestID != reqs[0].RequestID {
			t.Errorf("waiting checkouts used request ids %q and %q, want one", reqs[0].RequestID, req.RequestID)
		}
	}
	if live := fc.live(); len(live) != 1 || live[0] != r.seat.Lease().ID {
		t.Errorf("live leases %v, want only the seat's %s", live, r.seat.Lease().ID)
	}
}

func TestSeatRefusesUnverifiedTokens(t *testing.T) {
	forger := newSigner(t)
	for _, tc := range []struct {
		name    string
		knob    func(fc *fakeCluster)
		want    error
		fetches int
	}{
		{"unknown key", func(fc *fakeCluster) { fc.forger = forger }, token.ErrUnknownKey, keyFetches},
		{"bad signature", func(fc *fakeCluster) { fc.badSig = true }, token.ErrBadSignature, 1},
		{"another lease", func(fc *fakeCluster) { fc.wrongSub = true }, ErrBadToken, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeCluster(t, 1, 1, time.Minute)
			fc.set(tc.knob)
			c := newTestClient(t, Config{Addrs: fc.addrs()})
			_, err := c.AcquireSeat(context.Background(), cadRequest())
			if !errors.Is(err, ErrBadToken) || !errors.Is(err, tc.want) {
				t.Fatalf("AcquireSeat = %v, want ErrBadToken and %v", err, tc.want)
			}
			// The first fetch is the first use; an unknown kid refetches a
			// bounded number of times.
			if n := fc.keyFetches(); n != tc.fetches {
				t.Errorf("JWKS fetched %d times, want %d", n, tc.fetches)
			}
			if n := fc.count("POST /v1/leases/L1/checkin"); n != 1 {
				t.Errorf("unverified lease checked in %d times, want 1", n)
			}
			if live := fc.live(); len(live) != 0 {
				t.Errorf("live leases %v, want none", live)
			}
		})
	}
}

func TestSeatHeartbeatWithoutValidTokenDoesNotRenew(t *testing.T) {
	fc := newFakeCluster(t, 1, 1, 600*time.Millisecond)
	c := newTestClient(t, Config{Addrs: fc.addrs()})
	seat := acquire(t, c)
	nextEvent(t, seat)
	fc.set(func(fc *fakeCluster) { fc.badSig = true })
	ev := nextEvent(t, seat)
	if ev.State != SeatLost || !errors.Is(ev.Err, api.ErrLeaseExpired) || !strings.Contains(ev.Err.Error(), "bad signature") {
		t.Fatalf("event %+v, want lost with lease_expired after bad signatures", ev)
	}
	if n := fc.count("POST /v1/leases/L1/heartbeat"); n < 2 {
		t.Errorf("%d heartbeats, want retries", n)
	}
}

func TestSeatCloseChecksIn(t *testing.T) {
	fc := newFakeCluster(t, 1, 1, time.Minute)
	var seen []SeatState
	c := newTestClient(t, Config{Addrs: fc.addrs()})
	seat, err := c.AcquireSeat(context.Background(), cadRequest(), OnSeatChange(func(ev SeatEvent) { seen = append(seen, ev.State) }))
	if err != nil {
		t.Fatal(err)
	}
	if err := seat.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := fc.count("POST /v1/leases/L1/checkin"); n != 1 {
		t.Errorf("checkin hit %d times, want 1", n)
	}
	var got []SeatState
	for ev := range seat.Events() {
		got = append(got, ev.State)
	}
	want := []SeatState{SeatHeld, SeatEnded}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] || len(seen) != 2 || seen[0] != want[0] || seen[1] != want[1] {
		t.Errorf("events %v, callback %v, want %v", got, seen, want)
	}
	if seat.State() != SeatEnded || seat.Err() != nil {
		t.Errorf("after Close: state %s err %v", seat.State(), seat.Err())
	}
	if err := seat.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := fc.count("POST /v1/leases/L1/checkin"); n != 1 {
		t.Errorf("second Close checked in again: %d", n)
	}
}

// TestSeatRaisesTheTimeFloor: tokens the client verifies raise the floor,
// so the offline check refuses the seat's own token once the clock is
// turned back past the tolerance.
func TestSeatRaisesTheTimeFloor(t *testing.T) {
	fc := newFakeCluster(t, 1, 1, time.Minute)
	floor, err := token.OpenTimeFloor(filepath.Join(t.TempDir(), "floor"))
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, Config{Addrs: fc.addrs(), TimeFloor: floor})
	seat, err := c.AcquireSeat(context.Background(), cadRequest())
	if err != nil {
		t.Fatal(err)
	}
	defer seat.Close(context.Background())
	iat := time.Unix(seat.Claims().IssuedAt, 0)
	if !floor.Floor().Equal(iat) {
		t.Fatalf("floor %v after checkout, want the token's iat %v", floor.Floor(), iat)
	}
	keys, err := KeySetOf(&api.JWKS{Keys: fc.jwks})
	if err != nil {
		t.Fatal(err)
	}
	v := OfflineVerifier{Keys: keys, Machine: seat.Lease().Holder.Machine, Floor: floor, Tolerance: time.Minute}
	v.Now = func() time.Time { return iat.Add(time.Second) }
	if _, err := v.Verify(seat.Token()); err != nil {
		t.Fatalf("offline check with the clock right: %v", err)
	}
	v.Now = func() time.Time { return iat.Add(-2 * time.Minute) }
	if _, err := v.Verify(seat.Token()); !errors.Is(err, token.ErrClockRolledBack) {
		t.Fatalf("offline check with the clock turned back: %v, want ErrClockRolledBack", err)
	}
}

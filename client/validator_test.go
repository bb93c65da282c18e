package client

import (
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

func TestValidatorAnswersFromTheSeatsToken(t *testing.T) {
	fc := newFakeCluster(t, 1, 2, time.Hour) // no heartbeat during the test
	c := newTestClient(t, Config{Addrs: fc.addrs()})
	seat := acquire(t, c)
	v := NewValidator(seat)

	vd := v.Check("cad")
	if !vd.Valid || vd.Reason != "" || vd.LeaseID != "L1" || vd.ExpiresAt.Unix() != seat.Claims().ExpiresAt {
		t.Fatalf("Check(cad) = %+v, want valid on L1 until the token's exp", vd)
	}
	before := fc.nodes[0].total()
	for range 1000 {
		if !v.Valid("cad") {
			t.Fatal("Valid(cad) = false while the seat is held")
		}
	}
	if after := fc.nodes[0].total(); after != before {
		t.Errorf("Valid made %d requests, want none", after-before)
	}
	if vd := v.Check("viewer"); vd.Valid || vd.Reason != ReasonNoSeat {
		t.Errorf("Check(viewer) = %+v, want no_seat", vd)
	}

	// The token's exp passes by the local clock: not valid, although the
	// Seat has not noticed anything.
	v.now = func() time.Time { return time.Unix(seat.Claims().ExpiresAt, 0) }
	if vd := v.Check("cad"); vd.Valid || vd.Reason != ReasonTokenExpired || seat.State() != SeatHeld {
		t.Errorf("Check(cad) at exp = %+v (seat %s), want token_expired", vd, seat.State())
	}
}

func TestValidatorFollowsTheSeatsState(t *testing.T) {
	fc := newFakeCluster(t, 1, 2, time.Second)
	c := newTestClient(t, Config{Addrs: fc.addrs()})
	first := acquire(t, c)
	nextEvent(t, first)
	v := NewValidator(first)

	fc.revoke("L1")
	if ev := nextEvent(t, first); ev.State != SeatEnded {
		t.Fatalf("event %+v, want ended", ev)
	}
	vd := v.Check("cad")
	if vd.Valid || vd.Reason != ReasonSeatEnded || !errors.Is(vd.Err, api.ErrLeaseExpired) {
		t.Fatalf("Check(cad) after revoke = %+v, want seat_ended with lease_expired", vd)
	}

	// A second Seat for the feature makes it valid again.
	second := acquire(t, c)
	v.Add(second)
	if vd := v.Check("cad"); !vd.Valid || vd.LeaseID != second.Lease().ID {
		t.Fatalf("Check(cad) with a held second seat = %+v", vd)
	}

	fc.set(func(fc *fakeCluster) { fc.hbCode = api.CodeNoLeader })
	nextEvent(t, second) // held
	if ev := nextEvent(t, second); ev.State != SeatLost {
		t.Fatalf("event %+v, want lost", ev)
	}
	if vd := v.Check("cad"); vd.Valid || vd.Reason != ReasonSeatEnded {
		t.Errorf("Check(cad) = %+v, want the first seat's seat_ended", vd)
	}
	if vd := NewValidator(second).Check("cad"); vd.Valid || vd.Reason != ReasonSeatLost || !errors.Is(vd.Err, api.ErrLeaseExpired) {
		t.Errorf("Check(cad) of the lost seat = %+v, want seat_lost", vd)
	}
}

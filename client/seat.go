package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/token"
)

// SeatState says whether a Seat holds its seat.
type SeatState int

const (
	// SeatHeld: the Seat holds a lease whose signed token verified.
	SeatHeld SeatState = iota + 1
	// SeatLost: the lease ended or expired without a successful heartbeat;
	// the Seat is getting a seat back (the same lease if the cluster still
	// has it, else a new checkout, waiting while every seat is taken).
	SeatLost
	// SeatEnded: for good. Err says why: the lease was revoked or checked
	// in elsewhere, the license refused (suspended, revoked, expired,
	// feature no longer entitled), or nil after Close.
	SeatEnded
)

func (s SeatState) String() string {
	switch s {
	case SeatHeld:
		return "held"
	case SeatLost:
		return "lost"
	case SeatEnded:
		return "ended"
	}
	return "unknown"
}

// SeatEvent is one change of a Seat's state.
type SeatEvent struct {
	State SeatState
	// Lease is the lease now held (SeatHeld) or the one lost or ended. A
	// SeatHeld after a SeatLost with another Lease.ID is a new checkout;
	// with the same ID, the cluster had kept the old lease.
	Lease api.Lease
	// Err says why the seat was lost or ended; nil for SeatHeld and Close.
	Err error
	At  time.Time
}

// SeatOption tunes AcquireSeat.
type SeatOption func(*seatOptions)

type seatOptions struct {
	wait     bool
	onChange func(SeatEvent)
}

// WaitForSeat makes AcquireSeat wait while every seat is taken, asking
// again with backoff (200 ms doubling up to 30 s) until a seat frees or ctx
// ends. Without it AcquireSeat returns api.ErrNoSeats at once.
func WaitForSeat() SeatOption { return func(o *seatOptions) { o.wait = true } }

// OnSeatChange calls f with every state change, in order, from the Seat's
// goroutine (the final SeatEnded of Close from Close's). f must return
// quickly and must not call Close.
func OnSeatChange(f func(SeatEvent)) SeatOption {
	return func(o *seatOptions) { o.onChange = f }
}

// eventBuffer is how many events Events holds for a slow reader; beyond it
// the oldest is dropped (State is always current).
const eventBuffer = 16

// Seat holds one floating seat: checked out, verified, kept with
// heartbeats, taken back after a loss, checked in by Close. Its methods are
// safe for concurrent use.
type Seat struct {
	c        *Client
	req      api.CheckoutRequest // the checkout, without its request id
	onChange func(SeatEvent)

	view   atomic.Pointer[seatView] // what the accessors and the Validator read
	events chan SeatEvent           // one sender: the loop, then Close

	stop      context.CancelFunc
	done      chan struct{} // closed when the loop has returned
	ended     bool          // set by the loop before done is closed
	closeOnce sync.Once
	closeErr  error
}

// seatView is one published state of a Seat, replaced whole.
type seatView struct {
	state  SeatState
	lease  api.Lease
	token  string
	claims token.Claims
	err    error
}

// held is a lease with its verified token.
type held struct {
	lease  api.Lease
	token  string
	claims token.Claims
}

// AcquireSeat checks a seat out and holds it until Close. The answer's
// token must verify against the cluster's keys (VerifyToken), or the lease
// is checked back in and the error wraps ErrBadToken. ctx bounds the
// checkout (and the wait of WaitForSeat) only.
//
// Empty holder fields are filled in: machine and hostname with the host
// name, user with the login name, process with "program:pid".
//
// The Seat heartbeats every third of the time left on its lease, through
// any node, so a leader failover or a dead node only costs retries. It
// reports every change of state on Events (and OnSeatChange).
func (c *Client) AcquireSeat(ctx context.Context, req api.CheckoutRequest, opts ...SeatOption) (*Seat, error) {
	var o seatOptions
	for _, opt := range opts {
		opt(&o)
	}
	req.Holder = fillHolder(req.Holder)
	if req.RequestID == "" {
		req.RequestID = newRequestID()
	}
	h, err := c.checkoutSeat(ctx, req, o.wait)
	if err != nil {
		return nil, err
	}
	req.RequestID = "" // a later checkout after a loss asks for a new seat
	hctx, stop := context.WithCancel(context.Background())
	s := &Seat{
		c:        c,
		req:      req,
		onChange: o.onChange,
		events:   make(chan SeatEvent, eventBuffer),
		stop:     stop,
		done:     make(chan struct{}),
	}
	s.view.Store(&seatView{state: SeatHeld, lease: h.lease, token: h.token, claims: h.claims})
	go s.run(hctx, h)
	return s, nil
}

// State is the Seat's state now.
func (s *Seat) State() SeatState { return s.view.Load().state }

// Err says why the seat is lost or ended; nil while held and after Close.
func (s *Seat) Err() error { return s.view.Load().err }

// Lease is the latest lease; its ExpiresAt moves with every heartbeat.
func (s *Seat) Lease() api.Lease { return s.view.Load().lease }

// Token is the latest signed lease token, verified on arrival.
func (s *Seat) Token() string { return s.view.Load().token }

// Claims are the verified claims of Token.
func (s *Seat) Claims() token.Claims { return s.view.Load().claims }

// Events receives every change of state, in order: SeatHeld first, then
// SeatLost and SeatHeld as the seat is lost and regained, and SeatEnded
// last, after which it is closed. It keeps the last 16 events for a slow
// reader, dropping older ones.
func (s *Seat) Events() <-chan SeatEvent { return s.events }

// Close stops the heartbeats, checks the seat in (unless it has ended) and
// ends the Seat. Calling it again returns the first result.
func (s *Seat) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done // every wait of the loop ends with its context
		if s.ended {
			return
		}
		v := s.view.Load()
		if v.lease.ID != "" {
			err := s.c.Checkin(ctx, v.lease.ID, s.req.LicenseKey)
			if err != nil && !errors.Is(err, api.ErrLeaseExpired) && !errors.Is(err, api.ErrNotFound) {
				s.closeErr = err
			}
		}
		s.set(SeatEnded, held{lease: v.lease}, nil)
	})
	return s.closeErr
}

// set publishes a new state and reports it. Only the loop calls it, and
// Close once the loop has returned, so events has one sender.
func (s *Seat) set(state SeatState, h held, err error) {
	s.view.Store(&seatView{state: state, lease: h.lease, token: h.token, claims: h.claims, err: err})
	ev := SeatEvent{State: state, Lease: h.lease, Err: err, At: time.Now()}
	if s.onChange != nil {
		s.onChange(ev)
	}
	select {
	case s.events <- ev:
	default: // full: drop the oldest; no one else sends, so there is room after
		select {
		case <-s.events:
		default:
		}
		s.events <- ev
	}
	if state == SeatEnded {
		close(s.events)
	}
}

// update publishes a renewed lease without reporting a change.
func (s *Seat) update(h held) {
	s.view.Store(&seatView{state: SeatHeld, lease: h.lease, token: h.token, claims: h.claims})
}

package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/api"
)

// minHeartbeatInterval keeps a lease with almost no time left (a clock far
// off the cluster's) from turning the loop into a busy one.
const minHeartbeatInterval = 50 * time.Millisecond

// run is the Seat's goroutine: hold the lease, and when it is lost take a
// seat back, until the seat ends or Close cancels ctx.
func (s *Seat) run(ctx context.Context, h held) {
	defer close(s.done)
	s.set(SeatHeld, h, nil)
	for {
		final, err := s.hold(ctx, &h)
		if ctx.Err() != nil {
			return
		}
		if final {
			s.end(h, err)
			return
		}
		s.set(SeatLost, h, err)
		next, err := s.regain(ctx, h)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.end(h, err)
			return
		}
		h = next
		s.set(SeatHeld, h, nil)
	}
}

func (s *Seat) end(h held, err error) {
	s.ended = true
	s.set(SeatEnded, h, err)
}

// hold heartbeats h every third of the time its lease has left, until the
// lease is lost (final false: take a seat back) or ends for good (final
// true), or ctx ends.
//
// A 410 that arrives while the lease's expires_at is still ahead is final:
// the cluster never expires a lease early, so someone ended it (an admin
// revoke, a checkin elsewhere), and retaking the seat at once would undo
// that. A 410 after expires_at, a 404, or expires_at passing without a
// successful heartbeat is a loss the Seat recovers from.
func (s *Seat) hold(ctx context.Context, h *held) (final bool, err error) {
	for {
		if err := sleepCtx(ctx, max(time.Until(h.lease.ExpiresAt)/3, minHeartbeatInterval)); err != nil {
			return false, err
		}
		next, err := s.renew(ctx, *h)
		switch {
		case err == nil:
			*h = next
			s.update(next)
			continue
		case errors.Is(err, api.ErrLeaseExpired) && time.Now().Before(h.lease.ExpiresAt):
			return true, fmt.Errorf("lease %s ended before its expires_at (revoked or checked in): %w", h.lease.ID, err)
		case refused(err):
			return true, err
		}
		return false, err
	}
}

// renew heartbeats h's lease until one answer verifies, the lease is gone
// or refused, or its expires_at passes. Transport errors, 5xx and answers
// whose token does not verify are retried: only a signed answer renews.
func (s *Seat) renew(ctx context.Context, h held) (held, error) {
	var last error
	for attempt := 0; ; attempt++ {
		left := time.Until(h.lease.ExpiresAt)
		if left <= 0 {
			msg := "no successful heartbeat before expires_at " + h.lease.ExpiresAt.Format(time.RFC3339Nano)
			if last != nil {
				msg += "; last error: " + last.Error()
			}
			return held{}, api.Errorf(api.CodeLeaseExpired, msg)
		}
		hctx, cancel := context.WithDeadline(ctx, h.lease.ExpiresAt)
		next, err := s.c.heartbeatOnce(hctx, h.lease.ID, s.req.LicenseKey, left)
		cancel()
		if err == nil {
			return next, nil
		}
		if ctx.Err() != nil {
			return held{}, ctx.Err()
		}
		if gone(err) || refused(err) {
			return held{}, err
		}
		last = err
		if err := sleepCtx(ctx, min(backoff(attempt), time.Until(h.lease.ExpiresAt))); err != nil {
			return held{}, err
		}
	}
}

// regain takes a seat back after the lease lost was lost. It first heartbeats the
// lost lease: after a long outage the cluster may still hold it (a new
// leader re-arms every lease with a full TTL). Once the cluster says the
// lease is gone it checks out with a new request id, reused on every retry
// so that a retry never takes a second seat, and waits while every seat is
// taken. Only a refusal (license suspended, ...) or ctx stops it.
func (s *Seat) regain(ctx context.Context, lost held) (held, error) {
	oldID := lost.lease.ID
	req := s.req
	for attempt := 0; ; attempt++ {
		var h held
		var err error
		if oldID != "" {
			h, err = s.c.heartbeatOnce(ctx, oldID, req.LicenseKey, 0)
			if gone(err) {
				oldID = "" // check out anew, without waiting
				continue
			}
		} else {
			if req.RequestID == "" {
				req.RequestID = newRequestID()
			}
			h, err = s.c.checkoutOnce(ctx, req)
			if errors.Is(err, api.ErrLeaseExpired) {
				// The lease of this request id ended before we learnt of
				// it; only a new id asks for a new seat.
				req.RequestID = ""
			}
		}
		if err == nil {
			return h, nil
		}
		if ctx.Err() != nil {
			return held{}, ctx.Err()
		}
		if refused(err) {
			return held{}, err
		}
		if err := sleepCtx(ctx, seatWait(attempt)); err != nil {
			return held{}, err
		}
	}
}

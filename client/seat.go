package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tallyhq/tally/api"
)

// Seat is a checked-out lease kept alive by a heartbeat goroutine until Close
// or until it is lost.
type Seat struct {
	c   *Client
	key string
	ttl time.Duration

	mu    sync.Mutex
	lease api.Lease
	token string

	lost    chan error // buffered 1; a value on loss, closed when the heartbeat loop ends
	stop    context.CancelFunc
	done    chan struct{} // closed when the heartbeat loop has returned
	closed  sync.Once
	cerr    error
	wasLost bool // written by the heartbeat loop before done is closed
}

// AcquireSeat checks a seat out and starts heartbeating it every TTL/3, where
// TTL is expires_at - issued_at of the checkout. ctx bounds the checkout
// only; the seat lives until Close or loss.
func (c *Client) AcquireSeat(ctx context.Context, req api.CheckoutRequest) (*Seat, error) {
	resp, err := c.Checkout(ctx, req)
	if err != nil {
		return nil, err
	}
	ttl := resp.Lease.ExpiresAt.Sub(resp.Lease.IssuedAt)
	if ttl <= 0 {
		ttl = time.Until(resp.Lease.ExpiresAt)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("tally client: checkout returned lease %s already expired at %s",
			resp.Lease.ID, resp.Lease.ExpiresAt.Format(time.RFC3339Nano))
	}
	hctx, stop := context.WithCancel(context.Background())
	s := &Seat{
		c:     c,
		key:   req.LicenseKey,
		ttl:   ttl,
		lease: resp.Lease,
		token: resp.Token,
		lost:  make(chan error, 1),
		stop:  stop,
		done:  make(chan struct{}),
	}
	go s.heartbeatLoop(hctx)
	return s, nil
}

// Lease returns the latest lease; its ExpiresAt moves with every heartbeat.
func (s *Seat) Lease() api.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease
}

// Token returns the latest signed lease token.
func (s *Seat) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// Lost receives one error if the lease is lost (revoked or expired:
// lease_expired; the license suspended, expired or revoked; or expires_at
// passed without a successful heartbeat), and is then closed. After Close it
// is closed without a value.
func (s *Seat) Lost() <-chan error { return s.lost }

// Close stops the heartbeats and checks the seat in. A seat already lost is
// not checked in. Calling Close again returns the first result.
func (s *Seat) Close(ctx context.Context) error {
	s.closed.Do(func() {
		s.stop()
		select {
		case <-s.done:
		case <-ctx.Done():
			s.cerr = ctx.Err()
			return
		}
		if s.wasLost {
			return
		}
		err := s.c.Checkin(ctx, s.Lease().ID, s.key)
		if err != nil && !errors.Is(err, api.ErrLeaseExpired) {
			s.cerr = err
		}
	})
	return s.cerr
}

func (s *Seat) heartbeatLoop(ctx context.Context) {
	defer close(s.done)
	defer close(s.lost)
	interval := s.ttl / 3
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.renew(ctx); err != nil {
			if ctx.Err() == nil {
				s.wasLost = true
				s.lost <- err
			}
			return
		}
		t.Reset(interval)
	}
}

// renew heartbeats until one succeeds, the lease is lost, or ctx ends.
// Transient errors are retried until the lease's expires_at.
func (s *Seat) renew(ctx context.Context) error {
	var last error
	for attempt := 0; ; attempt++ {
		lease := s.Lease()
		left := time.Until(lease.ExpiresAt)
		if left <= 0 {
			msg := "no successful heartbeat before expires_at " + lease.ExpiresAt.Format(time.RFC3339Nano)
			if last != nil {
				msg += "; last error: " + last.Error()
			}
			return api.Errorf(api.CodeLeaseExpired, msg)
		}
		hctx, cancel := context.WithDeadline(ctx, lease.ExpiresAt)
		resp, err := s.c.heartbeat(hctx, lease.ID, s.key, left)
		cancel()
		if err == nil {
			s.mu.Lock()
			s.lease, s.token = resp.Lease, resp.Token
			s.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if seatLost(err) {
			return err
		}
		last = err
		wait := min(backoff(attempt), time.Until(lease.ExpiresAt))
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

// seatLost reports whether a heartbeat error means the lease is gone for
// good: lease_expired (expired or revoked), a 403 (license suspended,
// expired, revoked, feature no longer entitled) or a lease the cluster does
// not know.
func seatLost(err error) bool {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Status() {
	case http.StatusGone, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/tallyhq/tally/api"
)

// Waits between checkouts while every seat is taken, or while a lost seat
// is being taken back: 200 ms doubling up to 30 s, with jitter. The cap
// keeps 100k waiting desktops to a few thousand requests a second.
const (
	seatWaitBase = 200 * time.Millisecond
	seatWaitMax  = 30 * time.Second
)

// seatWait is the jittered wait after the given attempt.
func seatWait(attempt int) time.Duration {
	d := seatWaitMax
	if attempt < 8 {
		d = min(seatWaitBase<<attempt, seatWaitMax)
	}
	return d/2 + rand.N(d/2+1)
}

// checkoutSeat takes a seat for AcquireSeat: one request id for every
// attempt, waiting while the seats are taken if wait is set. An answer whose
// token does not verify holds no seat: the lease is checked back in.
func (c *Client) checkoutSeat(ctx context.Context, req api.CheckoutRequest, wait bool) (held, error) {
	var denied error // the last no_seats_available, kept for the timeout's error
	for attempt := 0; ; attempt++ {
		h, err := c.checkoutOnce(ctx, req)
		switch {
		case err == nil:
			return h, nil
		case h.lease.ID != "": // answered, but not provably by the cluster
			c.giveBack(h.lease.ID, req.LicenseKey)
			return held{}, err
		case ctx.Err() != nil && denied != nil:
			return held{}, ctxError(ctx, denied)
		case !wait || !errors.Is(err, api.ErrNoSeats):
			return held{}, err
		}
		denied = err
		if werr := sleepCtx(ctx, seatWait(attempt)); werr != nil {
			return held{}, ctxError(ctx, err)
		}
	}
}

// giveBack checks in a lease we will not use, on a context of its own: the
// caller's may have ended. It is best effort; the lease expires anyway.
func (c *Client) giveBack(leaseID, licenseKey string) {
	if leaseID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.requestTimeout)
	defer cancel()
	_ = c.Checkin(ctx, leaseID, licenseKey)
}

// checkoutOnce is one Checkout whose answer must verify. When it does not,
// the returned lease is the unverified one, so the caller can give it back.
func (c *Client) checkoutOnce(ctx context.Context, req api.CheckoutRequest) (held, error) {
	resp, err := c.Checkout(ctx, req)
	if err != nil {
		return held{}, err
	}
	claims, err := c.verifyLease(ctx, resp)
	if err != nil {
		return held{lease: resp.Lease}, err
	}
	return held{lease: resp.Lease, token: resp.Token, claims: *claims}, nil
}

// heartbeatOnce renews lease id; the answer must verify and be that lease.
func (c *Client) heartbeatOnce(ctx context.Context, id, licenseKey string, budget time.Duration) (held, error) {
	resp, err := c.heartbeat(ctx, id, licenseKey, budget)
	if err != nil {
		return held{}, err
	}
	if resp.Lease.ID != id {
		return held{}, fmt.Errorf("%w: heartbeat of lease %q answered lease %q", ErrBadToken, id, resp.Lease.ID)
	}
	claims, err := c.verifyLease(ctx, resp)
	if err != nil {
		return held{}, err
	}
	return held{lease: resp.Lease, token: resp.Token, claims: *claims}, nil
}

// refused reports whether the cluster refuses the license the seat: bad
// request, unknown key, or a 403 (suspended, revoked, expired, feature not
// entitled). Asking again will not help.
func refused(err error) bool {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Status() {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

// gone reports whether the cluster no longer has the lease: it ended (410)
// or is unknown (404).
func gone(err error) bool {
	return errors.Is(err, api.ErrLeaseExpired) || errors.Is(err, api.ErrNotFound)
}

// fillHolder fills the empty fields of h from this process and machine.
// The machine is MachineFingerprint, as `tally checkout` uses, so a seat's
// token passes the offline machine check on the machine that holds it.
func fillHolder(h api.Holder) api.Holder {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown-host"
	}
	if h.Machine == "" {
		if fp, err := MachineFingerprint(); err == nil {
			h.Machine = fp
		} else {
			h.Machine = host
		}
	}
	if h.Hostname == "" {
		h.Hostname = host
	}
	if h.User == "" {
		if u, err := user.Current(); err == nil {
			h.User = u.Username
		}
	}
	if h.Process == "" {
		h.Process = fmt.Sprintf("%s:%d", filepath.Base(os.Args[0]), os.Getpid())
	}
	return h
}

package node

import (
	"context"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
	"github.com/tallyhq/tally/token"
	"github.com/tallyhq/tally/transport"
)

// Node serves the whole HTTP API.
var _ transport.Backend = (*Node)(nil)

// Checkout takes a seat through Raft. The lease id is drawn here, on the
// leader, because Apply may not draw randomness; a retry of the same
// request_id gets the original lease back from the FSM.
func (n *Node) Checkout(ctx context.Context, req api.CheckoutRequest) (*api.LeaseResponse, error) {
	if !n.leaderReady.Load() {
		return nil, n.notLeader()
	}
	ttl := req.TTLSeconds * int64(time.Second)
	if req.TTLSeconds > 0 {
		if lic, ok := n.fsm.LicenseByKey(req.LicenseKey); ok {
			if pol, ok := n.fsm.Policy(lic.PolicyID); ok && ttl > fsm.LeaseTTLFor(lic, pol) {
				return nil, api.Errorf(api.CodeInvalidRequest, "ttl_seconds may not exceed the license's lease TTL")
			}
		}
	}
	leaseID, err := newID("lse")
	if err != nil {
		return nil, err
	}
	cmd := &fsm.Checkout{
		LeaseID:    leaseID,
		LicenseKey: req.LicenseKey,
		Feature:    req.Feature,
		Holder:     fromHolder(req.Holder),
		RequestID:  req.RequestID,
		TTL:        ttl,
		Time:       n.now(),

		BorrowHours: req.BorrowHours,
	}
	if bugAckBeforeCommit {
		return n.ackBeforeCommit(cmd)
	}
	res, err := n.apply(fsm.CmdCheckout, cmd)
	if err != nil {
		return nil, err
	}
	ls := *res.Lease
	lic, _ := n.fsm.License(ls.LicenseID)
	n.lessor.add(ls, lic.ExpiresAt)
	if at, ok := n.lessor.deadline(ls.ID); ok && at > ls.ExpiresAt {
		ls.ExpiresAt = at
	}
	return n.leaseAnswer(ls)
}

// Heartbeat extends a lease in the leader's memory only: no Raft entry.
//
// Its answer is read from the leader's state, so it is confirmed with
// VerifyLeader before it is sent: a deposed leader (paused, or cut off and
// not yet aware) still holds leases in memory that the new leader may have
// expired or re-armed, and must not renew them or call them gone.
// VerifyLeader costs a heartbeat round to the followers, shared by every
// request waiting at that moment, and no log entry.
func (n *Node) Heartbeat(ctx context.Context, leaseID, licenseKey string) (*api.LeaseResponse, error) {
	if !n.leaderReady.Load() || n.raft.State() != raft.Leader {
		return nil, n.notLeader()
	}
	res, err := n.heartbeat(ctx, leaseID, licenseKey)
	if verr := n.raft.VerifyLeader().Error(); verr != nil {
		return nil, &api.Error{Code: api.CodeNoLeader, Message: "leadership could not be confirmed; retry", RetryAfter: 1}
	}
	return res, err
}

func (n *Node) heartbeat(ctx context.Context, leaseID, licenseKey string) (*api.LeaseResponse, error) {
	// A lease whose expiry is being proposed is neither renewable nor gone
	// until that proposal is decided.
	if err := n.lessor.waitSettled(ctx, leaseID, n.cfg.ApplyTimeout); err != nil {
		return nil, &api.Error{Code: api.CodeTimeout, Message: "the lease's expiry is undecided; retry", RetryAfter: 1}
	}
	ls, err := n.ownedLease(leaseID, licenseKey)
	if err != nil {
		return nil, err
	}
	now := n.now()
	lic, _ := n.fsm.License(ls.LicenseID)
	switch {
	case lic.Status == fsm.StatusSuspended:
		return nil, api.Errorf(api.CodeLicenseSuspended, "the license is suspended")
	case lic.ExpiresAt != 0 && now >= lic.ExpiresAt:
		return nil, api.Errorf(api.CodeLicenseExpired, "the license has expired")
	}
	if ls.BorrowedUntil != 0 {
		// A borrow needs no heartbeats and is not stretched by one; the
		// answer carries a fresh token (with the current key) for it.
		if at, ok := n.lessor.deadline(ls.ID); ok && at > ls.ExpiresAt {
			ls.ExpiresAt = at
		}
		return n.leaseAnswer(ls)
	}
	at, ok := n.lessor.renew(ls, lic.ExpiresAt, now)
	if !ok {
		// Its expiry began after waitSettled: it is on its way out.
		return nil, &api.Error{Code: api.CodeTimeout, Message: "the lease's expiry is undecided; retry", RetryAfter: 1}
	}
	ls.ExpiresAt = at
	return n.leaseAnswer(ls)
}

// ownedLease finds a live lease of the license that key opens. A lease that
// ended recently is 410, one never seen 404; a wrong key is 401 (unknown) or
// 404 (another license's lease), so nothing leaks across licenses.
func (n *Node) ownedLease(leaseID, licenseKey string) (fsm.Lease, error) {
	lic, ok := n.fsm.LicenseByKey(licenseKey)
	if !ok {
		return fsm.Lease{}, api.Errorf(api.CodeUnauthorized, "unknown license key")
	}
	ls, ok := n.fsm.Lease(leaseID)
	if !ok {
		if n.fsm.LeaseEnded(leaseID) {
			return fsm.Lease{}, api.Errorf(api.CodeLeaseExpired, "the lease has ended (expired, checked in or revoked)")
		}
		return fsm.Lease{}, api.Errorf(api.CodeNotFound, "no such lease")
	}
	if ls.LicenseID != lic.ID {
		return fsm.Lease{}, api.Errorf(api.CodeNotFound, "no such lease")
	}
	return ls, nil
}

// Checkin releases a lease; checking in twice is fine.
func (n *Node) Checkin(ctx context.Context, leaseID, licenseKey string) error {
	_, err := n.apply(fsm.CmdCheckin, &fsm.Checkin{LeaseID: leaseID, LicenseKey: licenseKey, Time: n.now()})
	return err
}

// leaseAnswer signs the lease's token with this node's current key, which
// establishLeadership and syncKey registered before making it current. A
// borrowed lease's token expires at the borrow end and carries the borrow
// claim: it is the holder's offline proof.
func (n *Node) leaseAnswer(ls fsm.Lease) (*api.LeaseResponse, error) {
	c := token.Claims{
		Issuer:    n.cfg.ClusterName,
		Subject:   ls.ID,
		LicenseID: ls.LicenseID,
		Feature:   ls.Feature,
		Machine:   ls.Holder.Machine,
		User:      ls.Holder.User,
		IssuedAt:  n.cfg.Now().Unix(),
		ExpiresAt: time.Unix(0, ls.ExpiresAt).Unix(),
	}
	if ls.BorrowedUntil != 0 {
		c.BorrowedUntil = time.Unix(0, ls.BorrowedUntil).Unix()
		c.ExpiresAt = c.BorrowedUntil
	}
	tok, err := n.signingKey().signer.Sign(c)
	if err != nil {
		return nil, err
	}
	return &api.LeaseResponse{Lease: toLease(ls), Token: tok}, nil
}

// Validate answers from local memory (stale) or after a read index
// (linearizable). An unknown key is 401, like a bad token.
func (n *Node) Validate(ctx context.Context, req api.ValidateRequest, consistency string) (*api.ValidateResponse, error) {
	if err := n.read(ctx, consistency); err != nil {
		return nil, err
	}
	r := n.fsm.Validate(req.LicenseKey, req.Feature, req.Machine, n.now())
	if !r.Found {
		return nil, api.Errorf(api.CodeUnauthorized, "unknown license key")
	}
	// One read gives both the license's seats and the answer's, so they
	// always agree.
	seats := toSeats(r.Seats)
	lic := licenseWithSeats(r.License, seats)
	lic.Key = ""
	return &api.ValidateResponse{
		Valid:         r.Valid,
		Code:          r.Code,
		License:       &lic,
		Seats:         seats,
		NodeID:        n.cfg.NodeID,
		AppliedIndex:  n.fsm.AppliedIndex(),
		LastContactMS: n.lastContactMS(),
		Consistency:   consistency,
	}, nil
}

// Keys serves every registered signing key that is not retired as a JWKS.
func (n *Node) Keys() api.JWKS {
	out := api.JWKS{Keys: []api.JWK{}}
	for _, k := range n.fsm.Keys() {
		if k.Retired() {
			continue
		}
		j := token.PublicJWK(k.PublicKey)
		out.Keys = append(out.Keys, api.JWK{Kty: j.Kty, Crv: j.Crv, Kid: j.Kid, X: j.X, Use: j.Use, Alg: j.Alg})
	}
	return out
}

package fsm

import (
	"fmt"
	"math"
	"time"
)

// This file applies the lease commands: checkout, checkin, revoke, expire
// and checkpoint.

// applyCheckout takes a seat. The order of checks is the API's: unknown key,
// then a retried request id (answered with the original lease before any
// other check, so a retry gets the answer the first attempt got), then the
// license's status and expiry, the feature, and finally the seats.
//
// Every refusal of a known license is a lease.denied record whose detail
// starts with the refusal code: "no seats" at every body version, the
// others from version 2 on (version 1 entries replay as they were
// written). An unknown key writes nothing, so keys cannot be probed into
// the log.
func (s *state) applyCheckout(c *Checkout) *Result {
	lic, ok := s.licenseForKey(c.LicenseKey)
	if !ok {
		return refuse(CodeUnauthorized, "unknown license key")
	}
	res := s.checkout(lic, c)
	if r := res.Refusal; r != nil && r.Code != CodeNoSeatsAvailable && c.version >= 2 {
		h := c.Holder
		s.appendAudit(c.Time, AuditRecord{Type: AuditLeaseDenied, LicenseID: lic.ID,
			Feature: c.Feature, Holder: &h, Detail: r.Code})
	}
	if c.version >= 3 {
		switch {
		case res.Refusal != nil:
			s.countDenial(lic, c.Feature)
		case !res.Retried:
			l := res.Lease
			s.countGrant(lic.ID, l.Feature, s.seats[seatSlot{lic.ID, l.Feature}].inUse(), c.Time)
		}
	}
	return res
}

// checkout is applyCheckout for a known license.
func (s *state) checkout(lic License, c *Checkout) *Result {
	if c.RequestID != "" {
		if req, ok := s.request(lic.ID, c.RequestID); ok {
			if ll, live := s.leases[req.LeaseID]; live {
				l := ll.Lease
				return &Result{Lease: &l, Retried: true}
			}
			return refuse(CodeLeaseExpired, "lease %q of request %q has ended", req.LeaseID, c.RequestID)
		}
	}
	if r := licenseRefusal(lic, c.Time); r != nil {
		return r
	}
	pol := s.policies[lic.PolicyID]
	feat, ok := licenseFeature(lic, pol, c.Feature)
	if !ok {
		return refuse(CodeFeatureNotEntitled, "feature %q is not in policy %q", c.Feature, pol.ID)
	}
	if c.Holder.Machine == "" || c.LeaseID == "" {
		return refuse(CodeInvalidRequest, "lease id and holder machine are required")
	}
	if s.leaseKnown(c.LeaseID) {
		return refuse(CodeConflict, "lease %q already exists", c.LeaseID)
	}
	if r := borrowRefusal(pol, c.BorrowHours); r != nil {
		return r
	}
	key := seatKey(pol.SeatRule, c.Holder)
	use := s.seats[seatSlot{lic.ID, feat.Name}]
	if feat.Seats >= 0 && !use.holds(key) && use.inUse() >= feat.Seats && !bugSkipSeatCheck {
		h := c.Holder
		s.appendAudit(c.Time, AuditRecord{Type: AuditLeaseDenied, LicenseID: lic.ID,
			Feature: feat.Name, Holder: &h, Detail: describeSeats(feat.Seats, use.inUse())})
		return refuse(CodeNoSeatsAvailable, "all %d seats of %q are in use", feat.Seats, feat.Name)
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = LeaseTTLFor(lic, pol)
	}
	now := stampOf(c.Time)
	l := Lease{ID: c.LeaseID, LicenseID: lic.ID, Feature: feat.Name, Holder: s.names.holder(c.Holder),
		RequestID: c.RequestID, IssuedAt: now, ExpiresAt: addClamped(now, ttl), TTL: ttl}
	var detail string
	if c.BorrowHours > 0 {
		// The deadline is the borrow end; TTL stays the heartbeat TTL, so a
		// new leader's re-arm, max(stored, now+TTL), keeps the borrow end.
		l.BorrowedUntil = addClamped(now, c.BorrowHours*int64(time.Hour))
		l.ExpiresAt = l.BorrowedUntil
	}
	if c.version >= 4 {
		// No lease, and so no token signed for it, outlives its license.
		l.ExpiresAt = capAt(l.ExpiresAt, lic.ExpiresAt)
		if l.BorrowedUntil != 0 {
			l.BorrowedUntil = capAt(l.BorrowedUntil, lic.ExpiresAt)
		}
	}
	if c.BorrowHours > 0 {
		detail = fmt.Sprintf("borrow hours=%d until=%s", c.BorrowHours,
			time.Unix(0, l.BorrowedUntil).UTC().Format(time.RFC3339))
	}
	s.addLease(&liveLease{Lease: l, seatKey: key})
	h := l.Holder
	s.appendAudit(c.Time, AuditRecord{Type: AuditLeaseCheckout, LicenseID: lic.ID,
		LeaseID: l.ID, Feature: l.Feature, Holder: &h, Detail: detail})
	if c.RequestID != "" {
		s.rememberRequest(requestEntry{LicenseID: lic.ID, RequestID: c.RequestID, LeaseID: l.ID, Time: c.Time})
	}
	return &Result{Lease: &l}
}

// applyCheckin releases a lease of the caller's license. A lease that
// already ended (and is still remembered) checks in again successfully.
func (s *state) applyCheckin(c *Checkin) *Result {
	lic, ok := s.licenseForKey(c.LicenseKey)
	if !ok {
		return refuse(CodeUnauthorized, "unknown license key")
	}
	if ll, ok := s.leases[c.LeaseID]; ok && ll.LicenseID == lic.ID {
		l := s.endLease(ll, c.Time, AuditLeaseCheckin, "")
		return &Result{Lease: &l, Ended: []string{l.ID}}
	}
	if e, ok := s.ended[c.LeaseID]; ok && e.LicenseID == lic.ID {
		return &Result{}
	}
	return refuse(CodeNotFound, "lease %q not found", c.LeaseID)
}

// applyRevokeLease is the admin's force release; revoking an ended lease is
// a no-op success.
func (s *state) applyRevokeLease(c *RevokeLease) *Result {
	if ll, ok := s.leases[c.LeaseID]; ok {
		l := s.endLease(ll, c.Time, AuditLeaseRevoked, "revoked by admin")
		return &Result{Lease: &l, Ended: []string{l.ID}}
	}
	if _, ok := s.ended[c.LeaseID]; ok {
		return &Result{}
	}
	return refuse(CodeNotFound, "lease %q not found", c.LeaseID)
}

// applyExpireLeases ends the listed leases whose replicated deadline has
// passed by the command's time. A lease whose stored deadline is still in
// the future is skipped: a lease never ends before the promised time.
func (s *state) applyExpireLeases(c *ExpireLeases) *Result {
	res := &Result{}
	for _, id := range c.LeaseIDs {
		ll, ok := s.leases[id]
		if !ok || ll.ExpiresAt > c.Time {
			continue
		}
		s.endLease(ll, c.Time, AuditLeaseExpired, "")
		res.Ended = append(res.Ended, id)
	}
	return res
}

// applyCheckpointLeases records later deadlines; an earlier one is ignored.
func (s *state) applyCheckpointLeases(c *CheckpointLeases) *Result {
	for _, d := range c.Leases {
		if ll, ok := s.leases[d.LeaseID]; ok && d.ExpiresAt > ll.ExpiresAt {
			s.setDeadline(ll, d.ExpiresAt)
		}
	}
	return &Result{}
}

// endLease removes a live lease and audits why it ended.
func (s *state) endLease(ll *liveLease, now int64, auditType, detail string) Lease {
	l := ll.Lease
	s.removeLease(ll, now)
	h := l.Holder
	s.appendAudit(now, AuditRecord{Type: auditType, LicenseID: l.LicenseID,
		LeaseID: l.ID, Feature: l.Feature, Holder: &h, Detail: detail})
	return l
}

func (s *state) licenseForKey(key string) (License, bool) {
	id, ok := s.licenseByKey[key]
	if !ok {
		return License{}, false
	}
	return s.licenses[id], true
}

// leaseKnown reports whether a lease id is live or remembered as ended.
func (s *state) leaseKnown(id string) bool {
	if _, ok := s.leases[id]; ok {
		return true
	}
	_, ok := s.ended[id]
	return ok
}

// licenseRefusal says why a license cannot be used at time now, or nil.
func licenseRefusal(l License, now int64) *Result {
	switch {
	case l.Status == StatusSuspended:
		return refuse(CodeLicenseSuspended, "license %q is suspended", l.ID)
	case l.Status == StatusRevoked:
		return refuse(CodeLicenseRevoked, "license %q is revoked", l.ID)
	case l.ExpiresAt != 0 && now >= l.ExpiresAt:
		return refuse(CodeLicenseExpired, "license %q has expired", l.ID)
	}
	return nil
}

func (p *Policy) feature(name string) (Feature, bool) {
	for _, f := range p.Features {
		if f.Name == name {
			return f, true
		}
	}
	return Feature{}, false
}

// borrowRefusal checks a borrow against the policy's limit (0: none).
// hours is bounded here too, so hours*time.Hour cannot overflow.
func borrowRefusal(pol Policy, hours int64) *Result {
	switch {
	case hours < 0:
		return refuse(CodeInvalidRequest, "borrow hours must not be negative")
	case hours == 0:
		return nil
	case pol.MaxBorrowHours == 0:
		return refuse(CodeBorrowNotAllowed, "policy %q does not allow borrowing (max_borrow_hours is 0)", pol.ID)
	case hours > pol.MaxBorrowHours:
		return refuse(CodeBorrowNotAllowed, "borrow of %d hours exceeds the policy's limit of %d hours", hours, pol.MaxBorrowHours)
	case hours > maxBorrowHours:
		return refuse(CodeBorrowNotAllowed, "borrow of %d hours exceeds the limit of %d hours", hours, maxBorrowHours)
	}
	return nil
}

// maxBorrowHours bounds any borrow (about 100 years) whatever the policy says.
const maxBorrowHours = 100 * 365 * 24

// capAt is t, or limit when limit is set (non-zero) and earlier.
func capAt(t, limit int64) int64 {
	if limit != 0 && t > limit {
		return limit
	}
	return t
}

// addClamped is t+d without wrapping past the largest time.
func addClamped(t, d int64) int64 {
	if d > 0 && t > math.MaxInt64-d {
		return math.MaxInt64
	}
	return t + d
}

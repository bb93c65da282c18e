package fsm

import (
	"fmt"
	"sort"
	"strings"
)

// This file applies the provisioning commands: products, policies,
// licenses and license status (keys.go has the signing keys).

func (s *state) applyCreateProduct(c *CreateProduct) *Result {
	if c.ID == "" || c.Name == "" {
		return refuse(CodeInvalidRequest, "product id and name are required")
	}
	if _, ok := s.products[c.ID]; ok {
		return refuse(CodeConflict, "product %q already exists", c.ID)
	}
	p := Product{ID: c.ID, Name: c.Name, CreatedAt: c.Time}
	s.products[p.ID] = p
	s.appendAudit(c.Time, AuditRecord{Type: AuditProductCreated, Detail: "product=" + p.ID})
	return &Result{Product: &p}
}

func (s *state) applyCreatePolicy(c *CreatePolicy) *Result {
	p := clonePolicy(c.Policy)
	if p.ID == "" {
		return refuse(CodeInvalidRequest, "policy id is required")
	}
	if _, ok := s.policies[p.ID]; ok {
		return refuse(CodeConflict, "policy %q already exists", p.ID)
	}
	if _, ok := s.products[p.ProductID]; !ok {
		return refuse(CodeNotFound, "product %q not found", p.ProductID)
	}
	if r := checkPolicy(&p); r != nil {
		return r
	}
	p.CreatedAt, p.UpdatedAt = c.Time, c.Time
	s.policies[p.ID] = p
	s.appendAudit(c.Time, AuditRecord{Type: AuditPolicyCreated, Detail: "policy=" + p.ID + " product=" + p.ProductID})
	out := clonePolicy(p)
	return &Result{Policy: &out}
}

// applyUpdatePolicy changes the policy in place: licenses refer to it by id,
// so every license on it sees the change at once. Lowering seats below the
// seats in use ends nothing; new seats are refused until use drops.
func (s *state) applyUpdatePolicy(c *UpdatePolicy) *Result {
	old, ok := s.policies[c.ID]
	if !ok {
		return refuse(CodeNotFound, "policy %q not found", c.ID)
	}
	p := clonePolicy(old)
	var changed []string
	if c.Name != nil {
		p.Name, changed = *c.Name, append(changed, "name")
	}
	if c.Features != nil {
		p.Features, changed = cloneFeatures(*c.Features), append(changed, "features")
	}
	if c.LeaseTTL != nil {
		p.LeaseTTL, changed = *c.LeaseTTL, append(changed, "lease_ttl")
	}
	if c.SeatRule != nil {
		p.SeatRule, changed = *c.SeatRule, append(changed, "seat_rule")
	}
	if c.MaxBorrowHours != nil {
		p.MaxBorrowHours, changed = *c.MaxBorrowHours, append(changed, "max_borrow_hours")
	}
	if c.Duration != nil {
		p.Duration, changed = *c.Duration, append(changed, "duration")
	}
	if r := checkPolicy(&p); r != nil {
		return r
	}
	p.UpdatedAt = c.Time
	s.policies[p.ID] = p
	s.appendAudit(c.Time, AuditRecord{Type: AuditPolicyUpdated,
		Detail: "policy=" + p.ID + " changed=" + strings.Join(changed, ",")})
	out := clonePolicy(p)
	return &Result{Policy: &out}
}

// checkPolicy validates a policy and fills the default seat rule.
func checkPolicy(p *Policy) *Result {
	if len(p.Features) == 0 {
		return refuse(CodeInvalidRequest, "a policy needs at least one feature")
	}
	seen := make(map[string]bool, len(p.Features))
	for _, f := range p.Features {
		if f.Name == "" {
			return refuse(CodeInvalidRequest, "feature names must not be empty")
		}
		if seen[f.Name] {
			return refuse(CodeInvalidRequest, "feature %q is listed twice", f.Name)
		}
		seen[f.Name] = true
	}
	if p.LeaseTTL <= 0 {
		return refuse(CodeInvalidRequest, "lease ttl must be positive")
	}
	if p.MaxBorrowHours < 0 {
		return refuse(CodeInvalidRequest, "max borrow hours must not be negative")
	}
	if p.Duration < 0 {
		return refuse(CodeInvalidRequest, "duration must not be negative")
	}
	switch p.SeatRule {
	case "":
		p.SeatRule = SeatRuleProcess
	case SeatRuleProcess, SeatRuleMachine, SeatRuleUser:
	default:
		return refuse(CodeInvalidRequest, "seat rule %q is not process, machine or user", p.SeatRule)
	}
	return nil
}

func (s *state) applyCreateLicense(c *CreateLicense) *Result {
	l := cloneLicense(c.License)
	if l.ID == "" || l.Key == "" {
		return refuse(CodeInvalidRequest, "license id and key are required")
	}
	if _, ok := s.licenses[l.ID]; ok {
		return refuse(CodeConflict, "license %q already exists", l.ID)
	}
	if _, ok := s.licenseByKey[l.Key]; ok {
		return refuse(CodeConflict, "license key already in use")
	}
	pol, ok := s.policies[l.PolicyID]
	if !ok {
		return refuse(CodeNotFound, "policy %q not found", l.PolicyID)
	}
	if r := checkOverrides(l.Overrides, pol); r != nil {
		return r
	}
	l.Overrides = cloneOverrides(l.Overrides)
	l.ProductID = pol.ProductID
	l.Status = StatusActive
	l.CreatedAt = c.Time
	if l.ExpiresAt == 0 && pol.Duration > 0 {
		// From the leader's stamp, so every node computes the same expiry.
		l.ExpiresAt = addClamped(c.Time, pol.Duration)
	}
	s.licenses[l.ID] = l
	s.licenseByKey[l.Key] = l.ID
	s.appendAudit(c.Time, AuditRecord{Type: AuditLicenseCreated, LicenseID: l.ID,
		Detail: "policy=" + l.PolicyID + " customer=" + l.Customer})
	out := cloneLicense(l)
	return &Result{License: &out}
}

// applySetLicenseStatus suspends, reinstates or revokes. Revoked is final;
// revoking ends every lease of the license in lease id order.
func (s *state) applySetLicenseStatus(c *SetLicenseStatus) *Result {
	l, ok := s.licenses[c.ID]
	if !ok {
		return refuse(CodeNotFound, "license %q not found", c.ID)
	}
	var rec string
	switch c.Status {
	case StatusSuspended:
		rec = AuditLicenseSuspended
	case StatusActive:
		rec = AuditLicenseReinstated
	case StatusRevoked:
		rec = AuditLicenseRevoked
	default:
		return refuse(CodeInvalidRequest, "status %q is not active, suspended or revoked", c.Status)
	}
	if l.Status == StatusRevoked {
		return refuse(CodeConflict, "license %q is revoked; revocation is final", l.ID)
	}
	res := &Result{}
	if l.Status != c.Status {
		l.Status = c.Status
		s.licenses[l.ID] = l
		s.appendAudit(c.Time, AuditRecord{Type: rec, LicenseID: l.ID, Detail: "status=" + l.Status})
		if l.Status == StatusRevoked {
			res.Ended = s.endLicenseLeases(l.ID, c.Time)
		}
	}
	out := cloneLicense(l)
	res.License = &out
	return res
}

// endLicenseLeases revokes every live lease of a license, in id order.
func (s *state) endLicenseLeases(licenseID string, now int64) []string {
	ids := make([]string, 0, len(s.leasesByLicense[licenseID]))
	for id := range s.leasesByLicense[licenseID] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s.endLease(s.leases[id], now, AuditLeaseRevoked, "license revoked")
	}
	return ids
}

// describeSeats is the detail of a denial.
func describeSeats(seats, inUse int) string {
	return fmt.Sprintf("no_seats_available seats=%d in_use=%d", seats, inUse)
}

package fsm

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is per-license overrides: a license may replace its policy's
// seat count of a feature, or its lease TTL, for itself alone (a customer
// bought two extra seats). Everything else still comes from the policy,
// and a policy change still reaches the license except where it overrides.

// Overrides are a license's own values in place of its policy's. A seat
// count is kept only for a feature the policy had when it was set; if the
// policy drops the feature later, the override is kept but unused (the
// feature is not entitled).
type Overrides struct {
	// Seats are this license's seat counts of some features (Seats < 0:
	// entitled but not counted, as in a policy), stored sorted by name. A
	// list, not a map: msgpack writes a map[string]int in Go's random map
	// order, and snapshots must be the same bytes on every node. Not
	// omitempty, so that an empty list decodes back as one (the decoder's
	// round trip is fuzzed).
	Seats []Feature `msgpack:"seats"`
	// LeaseTTL (ns) replaces the policy's lease TTL when > 0.
	LeaseTTL int64 `msgpack:"ttl,omitempty"`
}

func (o *Overrides) empty() bool { return o == nil || len(o.Seats) == 0 && o.LeaseTTL == 0 }

// UpdateLicense changes a license. Overrides nil leaves them as they are;
// an empty Overrides removes them. Fields are only ever added.
type UpdateLicense struct {
	ID        string     `msgpack:"id"`
	Overrides *Overrides `msgpack:"overrides,omitempty"`
	Time      int64      `msgpack:"time"`
}

func (c *UpdateLicense) when() int64 { return c.Time }

// applyUpdateLicense replaces a license's overrides. Lowering a seat count
// below the seats in use ends no lease, as with a policy change.
func (s *state) applyUpdateLicense(c *UpdateLicense) *Result {
	l, ok := s.licenses[c.ID]
	if !ok {
		return refuse(CodeNotFound, "license %q not found", c.ID)
	}
	if c.Overrides == nil {
		return refuse(CodeInvalidRequest, "nothing to change: overrides are required")
	}
	if r := checkOverrides(c.Overrides, s.policies[l.PolicyID]); r != nil {
		return r
	}
	l.Overrides = cloneOverrides(c.Overrides)
	s.licenses[l.ID] = l
	s.appendAudit(c.Time, AuditRecord{Type: AuditLicenseUpdated, LicenseID: l.ID,
		Detail: "changed=overrides " + describeOverrides(l.Overrides)})
	out := cloneLicense(l)
	return &Result{License: &out}
}

// checkOverrides validates overrides against the license's policy.
func checkOverrides(o *Overrides, pol Policy) *Result {
	if o == nil {
		return nil
	}
	seen := make(map[string]bool, len(o.Seats))
	for _, f := range o.Seats {
		if _, ok := pol.feature(f.Name); !ok {
			return refuse(CodeInvalidRequest, "override of feature %q, which policy %q does not have", f.Name, pol.ID)
		}
		if seen[f.Name] {
			return refuse(CodeInvalidRequest, "feature %q is overridden twice", f.Name)
		}
		seen[f.Name] = true
		if f.Seats < -1 {
			return refuse(CodeInvalidRequest, "override seats of %q must be -1 (not counted) or more", f.Name)
		}
	}
	if o.LeaseTTL < 0 {
		return refuse(CodeInvalidRequest, "override lease ttl must not be negative")
	}
	return nil
}

// describeOverrides is an audit detail: "seats=cad:4,view:-1 ttl=30s", or
// "none" once they are removed.
func describeOverrides(o *Overrides) string {
	if o.empty() {
		return "none"
	}
	var parts []string
	if len(o.Seats) > 0 {
		seats := make([]string, 0, len(o.Seats))
		for _, f := range o.Seats {
			seats = append(seats, f.Name+":"+strconv.Itoa(f.Seats))
		}
		parts = append(parts, "seats="+strings.Join(seats, ","))
	}
	if o.LeaseTTL > 0 {
		parts = append(parts, fmt.Sprintf("ttl=%s", time.Duration(o.LeaseTTL)))
	}
	return strings.Join(parts, " ")
}

// cloneOverrides copies o with its seats sorted by feature name; empty
// overrides become nil, so a license without any encodes (and hashes) as
// one that never had them.
func cloneOverrides(o *Overrides) *Overrides {
	if o.empty() {
		return nil
	}
	c := &Overrides{LeaseTTL: o.LeaseTTL}
	if len(o.Seats) > 0 {
		c.Seats = slices.SortedFunc(slices.Values(o.Seats), func(a, b Feature) int { return strings.Compare(a.Name, b.Name) })
	}
	return c
}

// licenseFeature is a policy feature as the license sees it: its seat
// count overridden when the license says so.
func licenseFeature(lic License, pol Policy, name string) (Feature, bool) {
	f, ok := pol.feature(name)
	if !ok {
		return f, false
	}
	if n, ok := lic.Overrides.seats(name); ok {
		f.Seats = n
	}
	return f, true
}

func (o *Overrides) seats(name string) (int, bool) {
	if o == nil {
		return 0, false
	}
	for _, f := range o.Seats {
		if f.Name == name {
			return f.Seats, true
		}
	}
	return 0, false
}

// LeaseTTLFor is the lease TTL of a license on pol: its override, else the
// policy's.
func LeaseTTLFor(lic License, pol Policy) int64 {
	if lic.Overrides != nil && lic.Overrides.LeaseTTL > 0 {
		return lic.Overrides.LeaseTTL
	}
	return pol.LeaseTTL
}

// LicenseFeatures are the policy's features as lic sees them: seat counts
// overridden where the license says so (for license files and other views
// of one license's entitlements).
func LicenseFeatures(lic License, pol Policy) []Feature {
	out := cloneFeatures(pol.Features)
	for i := range out {
		if n, ok := lic.Overrides.seats(out[i].Name); ok {
			out[i].Seats = n
		}
	}
	return out
}

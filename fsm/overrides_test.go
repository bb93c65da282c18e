package fsm

import (
	"slices"
	"testing"
)

func TestApplyUpdateLicense(t *testing.T) {
	upd := func(o *Overrides) UpdateLicense { return UpdateLicense{ID: "lic1", Overrides: o, Time: t0 + sec} }
	withOverrides := func(h *harness) {
		mustOK(h.tb, h.apply(CmdUpdateLicense, upd(&Overrides{Seats: []Feature{{Name: "cad", Seats: 5}}, LeaseTTL: 10 * sec})))
	}
	runApplyCases(t, CmdUpdateLicense, []applyCase{
		{name: "ok", cmd: upd(&Overrides{Seats: []Feature{{Name: "cad", Seats: 4}, {Name: "view", Seats: 3}}, LeaseTTL: 30 * sec}),
			audit: []string{AuditLicenseUpdated},
			check: func(t *testing.T, h *harness, r *Result) {
				l, _ := h.f.License("lic1")
				if l.Overrides == nil || !slices.Equal(l.Overrides.Seats, []Feature{{Name: "cad", Seats: 4}, {Name: "view", Seats: 3}}) || l.Overrides.LeaseTTL != 30*sec ||
					!slices.Equal(r.License.Overrides.Seats, l.Overrides.Seats) {
					t.Fatalf("license = %+v overrides %+v", l, l.Overrides)
				}
				if u := h.f.Usage("lic1"); u["cad"].Total != 4 || u["view"].Total != 3 {
					t.Fatalf("usage = %v, want the overridden totals", u)
				}
				recs := h.f.Audit(0, 0)
				if d := recs[len(recs)-1].Detail; d != "changed=overrides seats=cad:4,view:3 ttl=30s" {
					t.Fatalf("detail = %q", d)
				}
				// The policy, and so every other license on it, is unchanged.
				if p, _ := h.f.Policy("pol1"); p.Features[0].Seats != 2 {
					t.Fatalf("policy = %+v", p)
				}
			}},
		{name: "empty overrides clear them", cmd: upd(&Overrides{}), setup: withOverrides,
			audit: []string{AuditLicenseUpdated},
			check: func(t *testing.T, h *harness, r *Result) {
				if l, _ := h.f.License("lic1"); l.Overrides != nil || h.f.Usage("lic1")["cad"].Total != 2 {
					t.Fatalf("license = %+v, usage %v", l, h.f.Usage("lic1"))
				}
			}},
		{name: "uncounted override", cmd: upd(&Overrides{Seats: []Feature{{Name: "cad", Seats: -1}}}),
			audit: []string{AuditLicenseUpdated},
			check: func(t *testing.T, h *harness, r *Result) {
				if u := h.f.Usage("lic1")["cad"]; u.Total != -1 {
					t.Fatalf("usage = %v", u)
				}
			}},
		{name: "nothing to change", cmd: upd(nil), code: CodeInvalidRequest},
		{name: "unknown license", cmd: UpdateLicense{ID: "nope", Overrides: &Overrides{}}, code: CodeNotFound},
		{name: "feature not in policy", cmd: upd(&Overrides{Seats: []Feature{{Name: "render", Seats: 1}}}), code: CodeInvalidRequest},
		{name: "seats below -1", cmd: upd(&Overrides{Seats: []Feature{{Name: "cad", Seats: -2}}}), code: CodeInvalidRequest},
		{name: "negative ttl", cmd: upd(&Overrides{LeaseTTL: -1}), code: CodeInvalidRequest},
	})
}

// TestOverridesApplyToCheckouts: a license's seat and TTL overrides
// replace its policy's for its checkouts only; lowering one below the
// seats in use ends nothing and refuses new seats.
func TestOverridesApplyToCheckouts(t *testing.T) {
	h := newHarness(t)
	h.seed() // cad: 2 seats, ttl 60 s
	mustOK(t, h.apply(CmdCreateLicense, CreateLicense{Time: t0, License: License{ID: "lic2", Key: "key-2", PolicyID: "pol1",
		Overrides: &Overrides{Seats: []Feature{{Name: "cad", Seats: 3}}, LeaseTTL: 20 * sec}}}))
	co2 := func(lease, machine string) *Result {
		return h.apply(CmdCheckout, Checkout{LeaseID: lease, LicenseKey: "key-2", Feature: "cad",
			Holder: Holder{Machine: machine}, Time: t0 + sec})
	}
	for i, id := range []string{"a", "b", "c"} {
		r := mustOK(t, co2(id, id))
		if r.Lease.TTL != 20*sec || r.Lease.ExpiresAt != t0+21*sec {
			t.Fatalf("checkout %d: lease %+v, want the override's 20 s TTL", i, r.Lease)
		}
	}
	if got := codeOf(co2("d", "d")); got != CodeNoSeatsAvailable {
		t.Fatalf("fourth seat: %q", got)
	}
	// lic1, on the same policy, still has the policy's 2 seats and TTL.
	if r := mustOK(t, h.checkout("x", "m1", "", t0+sec)); r.Lease.TTL != 60*sec {
		t.Fatalf("lic1 lease TTL %d", r.Lease.TTL)
	}
	mustOK(t, h.checkout("y", "m2", "", t0+sec))
	if got := codeOf(h.checkout("z", "m3", "", t0+sec)); got != CodeNoSeatsAvailable {
		t.Fatalf("lic1 third seat: %q", got)
	}
	mustOK(t, h.apply(CmdUpdateLicense, UpdateLicense{ID: "lic2", Overrides: &Overrides{Seats: []Feature{{Name: "cad", Seats: 1}}}, Time: t0 + 2*sec}))
	if n := len(h.f.Leases("lic2")); n != 3 {
		t.Fatalf("lowering the override ended leases: %d left", n)
	}
	if got := codeOf(co2("e", "e")); got != CodeNoSeatsAvailable {
		t.Fatalf("over the lowered override: %q", got)
	}
	if v := h.f.Validate("key-2", "cad", "", t0); v.Seats["cad"] != (SeatUsage{Total: 1, InUse: 3}) {
		t.Fatalf("validate seats = %v", v.Seats)
	}
	g := restoreBytes(t, snapshotBytes(t, h.f))
	if l, _ := g.License("lic2"); l.Overrides == nil || !slices.Equal(l.Overrides.Seats, []Feature{{Name: "cad", Seats: 1}}) || g.Hash() != h.f.Hash() {
		t.Fatalf("overrides after restore = %+v", l.Overrides)
	}
}

func TestCreateLicenseOverridesAndDuration(t *testing.T) {
	withDuration := func(h *harness) {
		mustOK(h.tb, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", Duration: ptr(30 * day), Time: t0}))
	}
	lic := func(mut func(l *License)) CreateLicense {
		l := License{ID: "lic2", Key: "key-2", PolicyID: "pol1"}
		if mut != nil {
			mut(&l)
		}
		return CreateLicense{License: l, Time: t0 + sec}
	}
	expiry := func(want int64) func(t *testing.T, h *harness, r *Result) {
		return func(t *testing.T, h *harness, r *Result) {
			if l, _ := h.f.License("lic2"); l.ExpiresAt != want || r.License.ExpiresAt != want {
				t.Fatalf("expires %d (result %d), want %d", l.ExpiresAt, r.License.ExpiresAt, want)
			}
		}
	}
	runApplyCases(t, CmdCreateLicense, []applyCase{
		{name: "duration gives the expiry", setup: withDuration, cmd: lic(nil),
			audit: []string{AuditLicenseCreated}, check: expiry(t0 + sec + 30*day)},
		{name: "an explicit expiry wins", setup: withDuration, cmd: lic(func(l *License) { l.ExpiresAt = t0 + day }),
			audit: []string{AuditLicenseCreated}, check: expiry(t0 + day)},
		{name: "no duration, no expiry", cmd: lic(nil), audit: []string{AuditLicenseCreated}, check: expiry(0)},
		{name: "with overrides", cmd: lic(func(l *License) { l.Overrides = &Overrides{Seats: []Feature{{Name: "cad", Seats: 7}}} }),
			audit: []string{AuditLicenseCreated},
			check: func(t *testing.T, h *harness, r *Result) {
				if u := h.f.Usage("lic2")["cad"]; u.Total != 7 {
					t.Fatalf("usage = %v", u)
				}
			}},
		{name: "empty overrides are none", cmd: lic(func(l *License) { l.Overrides = &Overrides{} }),
			audit: []string{AuditLicenseCreated},
			check: func(t *testing.T, h *harness, r *Result) {
				if l, _ := h.f.License("lic2"); l.Overrides != nil {
					t.Fatalf("overrides = %+v", l.Overrides)
				}
			}},
		{name: "override of a feature not in the policy", code: CodeInvalidRequest,
			cmd: lic(func(l *License) { l.Overrides = &Overrides{Seats: []Feature{{Name: "render", Seats: 1}}} })},
	})
}

func TestPolicyDuration(t *testing.T) {
	runApplyCases(t, CmdUpdatePolicy, []applyCase{
		{name: "set", cmd: UpdatePolicy{ID: "pol1", Duration: ptr(365 * day), Time: t0 + sec},
			audit: []string{AuditPolicyUpdated},
			check: func(t *testing.T, h *harness, r *Result) {
				p, _ := h.f.Policy("pol1")
				recs := h.f.Audit(0, 0)
				if p.Duration != 365*day || recs[len(recs)-1].Detail != "policy=pol1 changed=duration" {
					t.Fatalf("policy %+v, detail %q", p, recs[len(recs)-1].Detail)
				}
				// Existing licenses keep their expiry: duration is read at creation.
				if l, _ := h.f.License("lic1"); l.ExpiresAt != 0 {
					t.Fatalf("lic1 expiry changed: %+v", l)
				}
			}},
		{name: "negative", cmd: UpdatePolicy{ID: "pol1", Duration: ptr(-sec)}, code: CodeInvalidRequest},
	})
	runApplyCases(t, CmdCreatePolicy, []applyCase{
		{name: "create with duration", cmd: policyCmd(func(p *Policy) { p.Duration = day }),
			audit: []string{AuditPolicyCreated},
			check: func(t *testing.T, h *harness, r *Result) {
				if p, _ := h.f.Policy("pol2"); p.Duration != day {
					t.Fatalf("policy = %+v", p)
				}
			}},
		{name: "negative duration", cmd: policyCmd(func(p *Policy) { p.Duration = -1 }), code: CodeInvalidRequest},
	})
}

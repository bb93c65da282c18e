package fsm

import (
	"slices"
	"testing"
)

// applyCase is one row of a per-command table: a fresh seeded FSM, an
// optional setup, the command, the refusal code wanted ("" = success) and
// the audit record types the command must append.
type applyCase struct {
	name  string
	setup func(h *harness)
	cmd   any
	code  string
	audit []string
	check func(t *testing.T, h *harness, r *Result)
}

func runApplyCases(t *testing.T, typ CommandType, cases []applyCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.seed()
			if c.setup != nil {
				c.setup(h)
			}
			head, _ := h.f.AuditHead()
			r := h.apply(typ, c.cmd)
			if got := codeOf(r); got != c.code {
				t.Fatalf("code = %q (%v), want %q", got, refusalOf(r), c.code)
			}
			if got := auditTypes(h.f, head); !slices.Equal(got, c.audit) {
				t.Fatalf("audit records = %v, want %v", got, c.audit)
			}
			if err := VerifyChain(h.f.Audit(0, 0)); err != nil {
				t.Fatalf("chain: %v", err)
			}
			if c.check != nil {
				c.check(t, h, r)
			}
		})
	}
}

func TestApplyCreateProduct(t *testing.T) {
	runApplyCases(t, CmdCreateProduct, []applyCase{
		{name: "ok", cmd: CreateProduct{ID: "p2", Name: "Viewer", Time: t0 + sec},
			audit: []string{AuditProductCreated},
			check: func(t *testing.T, h *harness, r *Result) {
				p, ok := h.f.Product("p2")
				if !ok || p.Name != "Viewer" || p.CreatedAt != t0+sec || r.Product == nil || *r.Product != p {
					t.Fatalf("product = %+v %v, result %+v", p, ok, r.Product)
				}
			}},
		{name: "duplicate id", cmd: CreateProduct{ID: "p1", Name: "x", Time: t0}, code: CodeConflict},
		{name: "empty name", cmd: CreateProduct{ID: "p2", Time: t0}, code: CodeInvalidRequest},
		{name: "empty id", cmd: CreateProduct{Name: "x", Time: t0}, code: CodeInvalidRequest},
	})
}

func policyCmd(mut func(p *Policy)) CreatePolicy {
	p := Policy{ID: "pol2", ProductID: "p1", Name: "site", LeaseTTL: 30 * sec,
		Features: []Feature{{Name: "cad", Seats: 5}}}
	if mut != nil {
		mut(&p)
	}
	return CreatePolicy{Policy: p, Time: t0 + sec}
}

func TestApplyCreatePolicy(t *testing.T) {
	runApplyCases(t, CmdCreatePolicy, []applyCase{
		{name: "ok defaults rule", cmd: policyCmd(nil), audit: []string{AuditPolicyCreated},
			check: func(t *testing.T, h *harness, r *Result) {
				p, _ := h.f.Policy("pol2")
				if p.SeatRule != SeatRuleProcess || p.CreatedAt != t0+sec || p.UpdatedAt != t0+sec {
					t.Fatalf("policy = %+v", p)
				}
				if r.Policy == nil || r.Policy.ID != "pol2" {
					t.Fatalf("result policy = %+v", r.Policy)
				}
			}},
		{name: "machine rule", cmd: policyCmd(func(p *Policy) { p.SeatRule = SeatRuleMachine }),
			audit: []string{AuditPolicyCreated}},
		{name: "unknown product", cmd: policyCmd(func(p *Policy) { p.ProductID = "nope" }), code: CodeNotFound},
		{name: "duplicate id", cmd: policyCmd(func(p *Policy) { p.ID = "pol1" }), code: CodeConflict},
		{name: "empty id", cmd: policyCmd(func(p *Policy) { p.ID = "" }), code: CodeInvalidRequest},
		{name: "no features", cmd: policyCmd(func(p *Policy) { p.Features = nil }), code: CodeInvalidRequest},
		{name: "empty feature name", cmd: policyCmd(func(p *Policy) { p.Features = []Feature{{Seats: 1}} }),
			code: CodeInvalidRequest},
		{name: "duplicate feature", cmd: policyCmd(func(p *Policy) {
			p.Features = []Feature{{Name: "a", Seats: 1}, {Name: "a", Seats: 2}}
		}), code: CodeInvalidRequest},
		{name: "zero ttl", cmd: policyCmd(func(p *Policy) { p.LeaseTTL = 0 }), code: CodeInvalidRequest},
		{name: "bad rule", cmd: policyCmd(func(p *Policy) { p.SeatRule = "host" }), code: CodeInvalidRequest},
	})
}

func TestApplyUpdatePolicy(t *testing.T) {
	seats1 := &[]Feature{{Name: "cad", Seats: 1}, {Name: "view", Seats: -1}}
	runApplyCases(t, CmdUpdatePolicy, []applyCase{
		{name: "ok reaches every license", cmd: UpdatePolicy{ID: "pol1", Time: t0 + sec,
			Features: &[]Feature{{Name: "cad", Seats: 7}}, Name: ptr("big")},
			setup: func(h *harness) {
				mustOK(h.tb, h.apply(CmdCreateLicense, CreateLicense{Time: t0,
					License: License{ID: "lic2", Key: "key-2", PolicyID: "pol1"}}))
			},
			audit: []string{AuditPolicyUpdated},
			check: func(t *testing.T, h *harness, r *Result) {
				for _, id := range []string{"lic1", "lic2"} {
					if u := h.f.Usage(id); u["cad"].Total != 7 || len(u) != 1 {
						t.Fatalf("usage %s = %v", id, u)
					}
				}
				p, _ := h.f.Policy("pol1")
				if p.Name != "big" || p.LeaseTTL != 60*sec || p.UpdatedAt != t0+sec || p.CreatedAt != t0 {
					t.Fatalf("policy = %+v", p)
				}
			}},
		{name: "lower seats below use ends nothing, blocks new seats",
			setup: func(h *harness) {
				mustOK(h.tb, h.checkout("l1", "m1", "", t0))
				mustOK(h.tb, h.checkout("l2", "m2", "", t0))
			},
			cmd: UpdatePolicy{ID: "pol1", Features: seats1, Time: t0 + sec}, audit: []string{AuditPolicyUpdated},
			check: func(t *testing.T, h *harness, r *Result) {
				if n := h.f.LeaseCount(); n != 2 {
					t.Fatalf("leases = %d, want 2", n)
				}
				if c := codeOf(h.checkout("l3", "m3", "", t0+2*sec)); c != CodeNoSeatsAvailable {
					t.Fatalf("checkout over lowered limit: %q", c)
				}
				mustOK(t, h.apply(CmdCheckin, Checkin{LeaseID: "l1", LicenseKey: "key-1", Time: t0 + 3*sec}))
				if c := codeOf(h.checkout("l4", "m4", "", t0+4*sec)); c != CodeNoSeatsAvailable {
					t.Fatalf("checkout at limit: %q", c)
				}
				mustOK(t, h.apply(CmdCheckin, Checkin{LeaseID: "l2", LicenseKey: "key-1", Time: t0 + 5*sec}))
				mustOK(t, h.checkout("l5", "m5", "", t0+6*sec))
			}},
		{name: "change rule", cmd: UpdatePolicy{ID: "pol1", SeatRule: ptr(SeatRuleUser), Time: t0},
			audit: []string{AuditPolicyUpdated}},
		{name: "unknown policy", cmd: UpdatePolicy{ID: "nope", Time: t0}, code: CodeNotFound},
		{name: "zero ttl", cmd: UpdatePolicy{ID: "pol1", LeaseTTL: ptr(int64(0)), Time: t0}, code: CodeInvalidRequest},
		{name: "bad rule", cmd: UpdatePolicy{ID: "pol1", SeatRule: ptr("seat"), Time: t0}, code: CodeInvalidRequest},
		{name: "no features", cmd: UpdatePolicy{ID: "pol1", Features: &[]Feature{}, Time: t0}, code: CodeInvalidRequest},
		{name: "negative borrow", cmd: UpdatePolicy{ID: "pol1", MaxBorrowHours: ptr(int64(-1)), Time: t0},
			code: CodeInvalidRequest},
	})
}

func TestApplyCreateLicense(t *testing.T) {
	lic := func(mut func(l *License)) CreateLicense {
		l := License{ID: "lic2", Key: "key-2", PolicyID: "pol1", ProductID: "ignored",
			Status: StatusRevoked, Metadata: map[string]string{"site": "b"}}
		if mut != nil {
			mut(&l)
		}
		return CreateLicense{License: l, Time: t0 + sec}
	}
	runApplyCases(t, CmdCreateLicense, []applyCase{
		{name: "ok", cmd: lic(nil), audit: []string{AuditLicenseCreated},
			check: func(t *testing.T, h *harness, r *Result) {
				l, ok := h.f.LicenseByKey("key-2")
				if !ok || l.ID != "lic2" || l.Status != StatusActive || l.ProductID != "p1" ||
					l.CreatedAt != t0+sec || l.Metadata["site"] != "b" {
					t.Fatalf("license = %+v", l)
				}
				if r.License == nil || r.License.ID != "lic2" {
					t.Fatalf("result license = %+v", r.License)
				}
			}},
		{name: "unknown policy", cmd: lic(func(l *License) { l.PolicyID = "nope" }), code: CodeNotFound},
		{name: "duplicate id", cmd: lic(func(l *License) { l.ID = "lic1" }), code: CodeConflict},
		{name: "duplicate key", cmd: lic(func(l *License) { l.Key = "key-1" }), code: CodeConflict},
		{name: "no key", cmd: lic(func(l *License) { l.Key = "" }), code: CodeInvalidRequest},
	})
}

func TestApplySetLicenseStatus(t *testing.T) {
	twoLeases := func(h *harness) {
		mustOK(h.tb, h.checkout("l2", "m2", "", t0))
		mustOK(h.tb, h.checkout("l1", "m1", "", t0))
	}
	suspend := func(h *harness) {
		mustOK(h.tb, h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusSuspended, Time: t0}))
	}
	status := func(s string) SetLicenseStatus { return SetLicenseStatus{ID: "lic1", Status: s, Time: t0 + sec} }
	runApplyCases(t, CmdSetLicenseStatus, []applyCase{
		{name: "suspend", cmd: status(StatusSuspended), setup: twoLeases, audit: []string{AuditLicenseSuspended},
			check: func(t *testing.T, h *harness, r *Result) {
				if r.License.Status != StatusSuspended || h.f.LeaseCount() != 2 {
					t.Fatalf("license %+v, leases %d", r.License, h.f.LeaseCount())
				}
				if c := codeOf(h.checkout("l3", "m3", "", t0+2*sec)); c != CodeLicenseSuspended {
					t.Fatalf("checkout while suspended: %q", c)
				}
			}},
		{name: "reinstate", cmd: status(StatusActive), setup: suspend, audit: []string{AuditLicenseReinstated}},
		{name: "same status is a no-op", cmd: status(StatusActive)},
		{name: "revoke ends leases", cmd: status(StatusRevoked), setup: twoLeases,
			audit: []string{AuditLicenseRevoked, AuditLeaseRevoked, AuditLeaseRevoked},
			check: func(t *testing.T, h *harness, r *Result) {
				if !slices.Equal(r.Ended, []string{"l1", "l2"}) || h.f.LeaseCount() != 0 || !h.f.LeaseEnded("l1") {
					t.Fatalf("ended %v, leases %d", r.Ended, h.f.LeaseCount())
				}
				if u := h.f.Usage("lic1"); u["cad"].InUse != 0 {
					t.Fatalf("usage after revoke = %v", u)
				}
			}},
		{name: "revoked is final",
			setup: func(h *harness) { mustOK(h.tb, h.apply(CmdSetLicenseStatus, status(StatusRevoked))) },
			cmd:   status(StatusActive), code: CodeConflict},
		{name: "unknown license", cmd: SetLicenseStatus{ID: "nope", Status: StatusSuspended}, code: CodeNotFound},
		{name: "bad status", cmd: status("paused"), code: CodeInvalidRequest},
	})
}

func TestApplyRegisterKey(t *testing.T) {
	key := SigningKey{KID: "k1", PublicKey: []byte{1, 2, 3}, AddedAt: 99}
	runApplyCases(t, CmdRegisterKey, []applyCase{
		{name: "ok", cmd: RegisterKey{Key: key, Time: t0 + sec},
			check: func(t *testing.T, h *harness, r *Result) {
				ks := h.f.Keys()
				if len(ks) != 1 || ks[0].KID != "k1" || ks[0].AddedAt != t0+sec {
					t.Fatalf("keys = %+v", ks)
				}
			}},
		{name: "known kid is a no-op",
			setup: func(h *harness) { mustOK(h.tb, h.apply(CmdRegisterKey, RegisterKey{Key: key, Time: t0})) },
			cmd:   RegisterKey{Key: SigningKey{KID: "k1", PublicKey: []byte{9}}, Time: t0 + sec},
			check: func(t *testing.T, h *harness, r *Result) {
				if ks := h.f.Keys(); len(ks) != 1 || ks[0].PublicKey[0] != 1 || ks[0].AddedAt != t0 {
					t.Fatalf("keys = %+v", ks)
				}
			}},
		{name: "no kid", cmd: RegisterKey{Key: SigningKey{PublicKey: []byte{1}}}, code: CodeInvalidRequest},
	})
}

package fsm

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

func co(lease, feature string, h Holder, req string, t int64) Checkout {
	return Checkout{LeaseID: lease, LicenseKey: "key-1", Feature: feature, Holder: h, RequestID: req, Time: t}
}

func setRule(rule string) func(h *harness) {
	return func(h *harness) {
		mustOK(h.tb, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", SeatRule: &rule, Time: t0}))
		mustOK(h.tb, h.apply(CmdCheckout, co("a", "cad", Holder{Machine: "m1", User: "alice"}, "", t0)))
		mustOK(h.tb, h.apply(CmdCheckout, co("b", "cad", Holder{Machine: "m2", User: "bob"}, "", t0)))
	}
}

func wantLeases(n int) func(t *testing.T, h *harness, r *Result) {
	return func(t *testing.T, h *harness, r *Result) {
		t.Helper()
		if got := h.f.LeaseCount(); got != n {
			t.Fatalf("leases = %d, want %d", got, n)
		}
	}
}

func TestApplyCheckout(t *testing.T) {
	m1 := Holder{Machine: "m1", User: "alice"}
	denied := []string{AuditLeaseDenied} // every refusal of a known license
	full := func(h *harness) {
		mustOK(h.tb, h.checkout("a", "m1", "", t0))
		mustOK(h.tb, h.checkout("b", "m2", "", t0))
	}
	runApplyCases(t, CmdCheckout, []applyCase{
		{name: "ok", cmd: co("l1", "cad", m1, "r1", t0+sec), audit: []string{AuditLeaseCheckout},
			check: func(t *testing.T, h *harness, r *Result) {
				want := Lease{ID: "l1", LicenseID: "lic1", Feature: "cad", Holder: m1, RequestID: "r1",
					IssuedAt: t0 + sec, ExpiresAt: t0 + 61*sec, TTL: 60 * sec}
				got, _ := h.f.Lease("l1")
				if *r.Lease != want || got != want || r.Retried {
					t.Fatalf("lease = %+v, stored %+v", *r.Lease, got)
				}
				if u := h.f.Usage("lic1"); u["cad"] != (SeatUsage{Total: 2, InUse: 1}) || u["view"].Total != -1 {
					t.Fatalf("usage = %v", u)
				}
			}},
		{name: "ttl override", cmd: Checkout{LeaseID: "l1", LicenseKey: "key-1", Feature: "cad", Holder: m1,
			TTL: 5 * sec, Time: t0}, audit: []string{AuditLeaseCheckout},
			check: func(t *testing.T, h *harness, r *Result) {
				if r.Lease.ExpiresAt != t0+5*sec || r.Lease.TTL != 5*sec {
					t.Fatalf("lease = %+v", r.Lease)
				}
			}},
		{name: "unknown key", cmd: Checkout{LeaseID: "l1", LicenseKey: "nope", Feature: "cad", Holder: m1},
			code: CodeUnauthorized},
		{name: "suspended", cmd: co("l1", "cad", m1, "", t0), code: CodeLicenseSuspended, audit: denied,
			setup: func(h *harness) {
				mustOK(h.tb, h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusSuspended}))
			}},
		{name: "revoked", cmd: co("l1", "cad", m1, "", t0), code: CodeLicenseRevoked, audit: denied,
			setup: func(h *harness) {
				mustOK(h.tb, h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusRevoked}))
			}},
		{name: "expired", cmd: Checkout{LeaseID: "l1", LicenseKey: "key-e", Feature: "cad", Holder: m1, Time: t0 + min},
			code: CodeLicenseExpired, audit: denied,
			setup: func(h *harness) {
				mustOK(h.tb, h.apply(CmdCreateLicense, CreateLicense{Time: t0,
					License: License{ID: "lic-e", Key: "key-e", PolicyID: "pol1", ExpiresAt: t0 + min}}))
			}},
		{name: "feature not entitled", cmd: co("l1", "render", m1, "", t0), code: CodeFeatureNotEntitled, audit: denied},
		{name: "no machine", cmd: co("l1", "cad", Holder{User: "alice"}, "", t0), code: CodeInvalidRequest, audit: denied},
		{name: "no lease id", cmd: co("", "cad", m1, "", t0), code: CodeInvalidRequest, audit: denied},
		{name: "lease id taken", cmd: co("a", "cad", m1, "", t0), setup: full, code: CodeConflict, audit: denied},
		{name: "ended lease id is not reused", cmd: co("a", "cad", m1, "", t0+2*sec), code: CodeConflict, audit: denied,
			setup: func(h *harness) {
				mustOK(h.tb, h.checkout("a", "m1", "", t0))
				mustOK(h.tb, h.apply(CmdRevokeLease, RevokeLease{LeaseID: "a", Time: t0 + sec}))
			}},
		{name: "no seats audits a denial", cmd: co("c", "cad", Holder{Machine: "m3"}, "", t0+sec), setup: full,
			code: CodeNoSeatsAvailable, audit: []string{AuditLeaseDenied}, check: wantLeases(2)},
		{name: "uncounted feature", cmd: co("c", "view", Holder{Machine: "m3"}, "", t0+sec), setup: full,
			audit: []string{AuditLeaseCheckout}},
		{name: "retry answers the original", cmd: co("other", "cad", m1, "r1", t0+sec),
			setup: func(h *harness) { mustOK(h.tb, h.checkout("a", "m1", "r1", t0)) },
			check: func(t *testing.T, h *harness, r *Result) {
				if !r.Retried || r.Lease.ID != "a" || h.f.LeaseCount() != 1 {
					t.Fatalf("retry = %+v retried=%v", r.Lease, r.Retried)
				}
			}},
		{name: "retry answers the original even when full", cmd: co("c", "cad", m1, "r1", t0+sec),
			setup: func(h *harness) {
				mustOK(h.tb, h.checkout("a", "m1", "r1", t0))
				mustOK(h.tb, h.checkout("b", "m2", "", t0))
			}, check: wantLeases(2)},
		{name: "retry of an ended lease", cmd: co("c", "cad", m1, "r1", t0+2*sec), code: CodeLeaseExpired, audit: denied,
			setup: func(h *harness) {
				mustOK(h.tb, h.checkout("a", "m1", "r1", t0))
				mustOK(h.tb, h.apply(CmdCheckin, Checkin{LeaseID: "a", LicenseKey: "key-1", Time: t0 + sec}))
			}},
		{name: "request id forgotten after the window", cmd: co("c", "cad", m1, "r1", t0+int64(RequestWindow)+sec),
			setup: func(h *harness) { mustOK(h.tb, h.checkout("a", "m1", "r1", t0)) },
			audit: []string{AuditLeaseCheckout}, check: wantLeases(2)},
		{name: "request id kept to the edge of the window", cmd: co("c", "cad", m1, "r1", t0+int64(RequestWindow)),
			setup: func(h *harness) { mustOK(h.tb, h.checkout("a", "m1", "r1", t0)) }, check: wantLeases(1)},
		{name: "machine rule shares a seat", cmd: co("c", "cad", Holder{Machine: "m1", User: "carol"}, "", t0),
			setup: setRule(SeatRuleMachine), audit: []string{AuditLeaseCheckout},
			check: func(t *testing.T, h *harness, r *Result) {
				if u := h.f.Usage("lic1")["cad"]; u.InUse != 2 || h.f.LeaseCount() != 3 {
					t.Fatalf("usage = %v", u)
				}
			}},
		{name: "machine rule new machine", cmd: co("c", "cad", Holder{Machine: "m3", User: "alice"}, "", t0),
			setup: setRule(SeatRuleMachine), code: CodeNoSeatsAvailable, audit: []string{AuditLeaseDenied}},
		{name: "user rule shares a seat", cmd: co("c", "cad", Holder{Machine: "m9", User: "alice"}, "", t0),
			setup: setRule(SeatRuleUser), audit: []string{AuditLeaseCheckout}},
		{name: "user rule new user", cmd: co("c", "cad", Holder{Machine: "m1", User: "carol"}, "", t0),
			setup: setRule(SeatRuleUser), code: CodeNoSeatsAvailable, audit: []string{AuditLeaseDenied}},
		{name: "user rule falls back to machine", cmd: co("d", "cad", Holder{Machine: "mx"}, "", t0),
			setup: func(h *harness) {
				rule := SeatRuleUser
				mustOK(h.tb, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", SeatRule: &rule, Time: t0}))
				mustOK(h.tb, h.apply(CmdCheckout, co("a", "cad", Holder{Machine: "mx"}, "", t0)))
				mustOK(h.tb, h.apply(CmdCheckout, co("b", "cad", Holder{Machine: "my"}, "", t0)))
			}, audit: []string{AuditLeaseCheckout}},
		{name: "process rule counts every lease", cmd: co("c", "cad", Holder{Machine: "m1", User: "alice"}, "", t0),
			setup: setRule(SeatRuleProcess), code: CodeNoSeatsAvailable, audit: []string{AuditLeaseDenied}},
	})
}

func TestApplyCheckin(t *testing.T) {
	one := func(h *harness) { mustOK(h.tb, h.checkout("a", "m1", "", t0)) }
	otherLicense := func(h *harness) {
		mustOK(h.tb, h.apply(CmdCreateLicense, CreateLicense{Time: t0,
			License: License{ID: "lic2", Key: "key-2", PolicyID: "pol1"}}))
		one(h)
	}
	runApplyCases(t, CmdCheckin, []applyCase{
		{name: "ok", cmd: Checkin{LeaseID: "a", LicenseKey: "key-1", Time: t0 + sec}, setup: one,
			audit: []string{AuditLeaseCheckin},
			check: func(t *testing.T, h *harness, r *Result) {
				if !slices.Equal(r.Ended, []string{"a"}) || r.Lease.ID != "a" || !h.f.LeaseEnded("a") ||
					h.f.LeaseCount() != 0 || h.f.Usage("lic1")["cad"].InUse != 0 || len(h.f.ExpiringBefore(1<<62, 0)) != 0 {
					t.Fatalf("result %+v", r)
				}
			}},
		{name: "second checkin", cmd: Checkin{LeaseID: "a", LicenseKey: "key-1", Time: t0 + 2*sec},
			setup: func(h *harness) {
				one(h)
				mustOK(h.tb, h.apply(CmdCheckin, Checkin{LeaseID: "a", LicenseKey: "key-1", Time: t0 + sec}))
			}},
		{name: "unknown key", cmd: Checkin{LeaseID: "a", LicenseKey: "nope"}, setup: one, code: CodeUnauthorized},
		{name: "lease of another license", cmd: Checkin{LeaseID: "a", LicenseKey: "key-2"}, setup: otherLicense,
			code: CodeNotFound, check: wantLeases(1)},
		{name: "never seen", cmd: Checkin{LeaseID: "zz", LicenseKey: "key-1"}, code: CodeNotFound},
		{name: "remembered to the edge of the window", cmd: Checkin{LeaseID: "a", LicenseKey: "key-1",
			Time: t0 + sec + int64(EndedWindow)},
			setup: func(h *harness) {
				one(h)
				mustOK(h.tb, h.apply(CmdCheckin, Checkin{LeaseID: "a", LicenseKey: "key-1", Time: t0 + sec}))
			}},
		{name: "forgotten after the window", cmd: Checkin{LeaseID: "a", LicenseKey: "key-1",
			Time: t0 + sec + int64(EndedWindow) + 1}, code: CodeNotFound,
			setup: func(h *harness) {
				one(h)
				mustOK(h.tb, h.apply(CmdCheckin, Checkin{LeaseID: "a", LicenseKey: "key-1", Time: t0 + sec}))
			}},
	})
}

func TestApplyRevokeLease(t *testing.T) {
	one := func(h *harness) { mustOK(h.tb, h.checkout("a", "m1", "", t0)) }
	runApplyCases(t, CmdRevokeLease, []applyCase{
		{name: "ok", cmd: RevokeLease{LeaseID: "a", Time: t0 + sec}, setup: one, audit: []string{AuditLeaseRevoked},
			check: func(t *testing.T, h *harness, r *Result) {
				if !slices.Equal(r.Ended, []string{"a"}) || !h.f.LeaseEnded("a") || h.f.LeaseCount() != 0 {
					t.Fatalf("result %+v", r)
				}
			}},
		{name: "already ended", cmd: RevokeLease{LeaseID: "a", Time: t0 + 2*sec},
			setup: func(h *harness) {
				one(h)
				mustOK(h.tb, h.apply(CmdRevokeLease, RevokeLease{LeaseID: "a", Time: t0 + sec}))
			}},
		{name: "unknown", cmd: RevokeLease{LeaseID: "zz"}, code: CodeNotFound},
	})
}

func TestApplyExpireLeases(t *testing.T) {
	three := func(h *harness) {
		rule := SeatRuleMachine
		mustOK(h.tb, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", SeatRule: &rule, Time: t0}))
		mustOK(h.tb, h.checkout("a", "m1", "", t0))        // expires t0+60s
		mustOK(h.tb, h.checkout("b", "m1", "", t0+10*sec)) // t0+70s
		mustOK(h.tb, h.checkout("c", "m2", "", t0+20*sec)) // t0+80s
	}
	runApplyCases(t, CmdExpireLeases, []applyCase{
		{name: "due ones only", cmd: ExpireLeases{LeaseIDs: []string{"c", "a", "b", "zz", "a"}, Time: t0 + 70*sec},
			setup: three, audit: []string{AuditLeaseExpired, AuditLeaseExpired},
			check: func(t *testing.T, h *harness, r *Result) {
				if !slices.Equal(r.Ended, []string{"a", "b"}) || h.f.LeaseCount() != 1 || !h.f.LeaseEnded("b") {
					t.Fatalf("ended %v", r.Ended)
				}
				if u := h.f.Usage("lic1")["cad"]; u.InUse != 1 {
					t.Fatalf("usage %v", u)
				}
			}},
		{name: "nothing due", cmd: ExpireLeases{LeaseIDs: []string{"a"}, Time: t0 + 59*sec}, setup: three,
			check: wantLeases(3)},
		{name: "checkpointed lease is not due", cmd: ExpireLeases{LeaseIDs: []string{"a"}, Time: t0 + 90*sec},
			setup: func(h *harness) {
				three(h)
				mustOK(h.tb, h.apply(CmdCheckpointLeases, CheckpointLeases{Time: t0 + 50*sec,
					Leases: []LeaseDeadline{{LeaseID: "a", ExpiresAt: t0 + 100*sec}}}))
			}, check: wantLeases(3)},
	})
}

func TestApplyCheckpointLeases(t *testing.T) {
	two := func(h *harness) {
		mustOK(h.tb, h.checkout("a", "m1", "", t0))     // t0+60s
		mustOK(h.tb, h.checkout("b", "m2", "", t0+sec)) // t0+61s
	}
	runApplyCases(t, CmdCheckpointLeases, []applyCase{
		{name: "later moves, earlier is ignored", setup: two, cmd: CheckpointLeases{Time: t0 + 30*sec,
			Leases: []LeaseDeadline{{"a", t0 + 200*sec}, {"b", t0 + 10*sec}, {"zz", t0 + 500*sec}}},
			check: func(t *testing.T, h *harness, r *Result) {
				a, _ := h.f.Lease("a")
				b, _ := h.f.Lease("b")
				if a.ExpiresAt != t0+200*sec || b.ExpiresAt != t0+61*sec {
					t.Fatalf("a %+v b %+v", a, b)
				}
				due := h.f.ExpiringBefore(t0+300*sec, 0)
				if len(due) != 2 || due[0].ID != "b" || due[1].ID != "a" {
					t.Fatalf("expiry order %+v", due)
				}
				if due := h.f.ExpiringBefore(t0+100*sec, 0); len(due) != 1 || due[0].ID != "b" {
					t.Fatalf("due by t0+100s: %+v", due)
				}
			}},
	})
}

// Leases on a seat of their own (process rule) and leases sharing a seat
// key (machine rule) count together, across a rule change and through a
// snapshot, whose seat keys keep their "l:" form.
func TestOwnAndSharedSeatsCountTogether(t *testing.T) {
	h := newHarness(t)
	h.seed() // cad: 2 seats
	machine := SeatRuleMachine
	mustOK(t, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", SeatRule: &machine, Time: t0}))
	mustOK(t, h.apply(CmdCheckout, co("a", "cad", Holder{Machine: "m1"}, "", t0)))
	mustOK(t, h.apply(CmdCheckout, co("b", "cad", Holder{Machine: "m1"}, "", t0))) // same seat
	process := SeatRuleProcess
	mustOK(t, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", SeatRule: &process, Time: t0}))
	mustOK(t, h.apply(CmdCheckout, co("c", "cad", Holder{Machine: "m1"}, "", t0))) // a seat of its own
	inUse := func(f *FSM) int { return f.Usage("lic1")["cad"].InUse }
	if got := inUse(h.f); got != 2 {
		t.Fatalf("in use = %d, want 2 (m1's shared seat and c's own)", got)
	}
	if r := h.apply(CmdCheckout, co("d", "cad", Holder{Machine: "m2"}, "", t0)); r.Refusal == nil || r.Refusal.Code != CodeNoSeatsAvailable {
		t.Fatalf("third seat: %+v", r)
	}
	snap := snapshotBytes(t, h.f)
	if !bytes.Contains(snap, []byte("l:c")) || !bytes.Contains(snap, []byte("m:m1")) {
		t.Fatalf("snapshot lacks the seat keys l:c and m:m1")
	}
	g := restoreBytes(t, snap)
	if got := inUse(g); got != 2 {
		t.Fatalf("restored in use = %d, want 2", got)
	}
	if !bytes.Equal(snapshotBytes(t, g), snap) {
		t.Fatal("restored state snapshots differently")
	}
	for _, f := range []*FSM{h.f, g} {
		hf := &harness{tb: t, f: f, idx: h.idx}
		// a and b share m1's seat: it stays while either lives.
		for i, id := range []string{"a", "c", "b"} {
			mustOK(t, hf.apply(CmdCheckin, Checkin{LeaseID: id, LicenseKey: "key-1", Time: t0 + sec}))
			if want := []int{2, 1, 0}[i]; inUse(f) != want {
				t.Fatalf("after checking in %s: in use = %d, want %d", id, inUse(f), want)
			}
		}
	}
}

// TestRequestIDsPerLicenseBounded: a license remembers at most
// MaxRequestsPerLicense request ids. Past that the oldest is forgotten
// first: a retry of it is a new checkout (a new lease, a new seat), while
// a recent id is still answered with its original lease.
func TestRequestIDsPerLicenseBounded(t *testing.T) {
	h := newHarness(t)
	h.seed()
	view := func(lease, req string, at int64) *Result { // view is uncounted: every checkout fits
		return h.apply(CmdCheckout, co(lease, "view", Holder{Machine: "m1"}, req, at))
	}
	for i := 0; i <= MaxRequestsPerLicense; i++ {
		mustOK(t, view(fmt.Sprintf("l%d", i), fmt.Sprintf("r%d", i), t0+sec))
	}
	recent := fmt.Sprintf("r%d", MaxRequestsPerLicense)
	if r := mustOK(t, view("again", recent, t0+2*sec)); !r.Retried || r.Lease.ID != fmt.Sprintf("l%d", MaxRequestsPerLicense) {
		t.Fatalf("retry of the newest id: retried=%v lease %+v, want the original", r.Retried, r.Lease)
	}
	if r := mustOK(t, view("l1-again", "r1", t0+2*sec)); !r.Retried || r.Lease.ID != "l1" {
		t.Fatalf("retry of the second id: retried=%v lease %+v, want l1", r.Retried, r.Lease)
	}
	before := h.f.LeaseCount()
	r := mustOK(t, view("l0-again", "r0", t0+2*sec))
	if r.Retried || r.Lease.ID != "l0-again" || h.f.LeaseCount() != before+1 {
		t.Fatalf("retry of the forgotten oldest id: retried=%v lease %+v, leases %d (want a new lease, %d)",
			r.Retried, r.Lease, h.f.LeaseCount(), before+1)
	}
}

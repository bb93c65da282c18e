package fsm

import (
	"bytes"
	"slices"
	"testing"
)

const day = 24 * hour

// goldenHistoryV3 applies a fixed history that touches every command of
// the v3 generation: Checkout at body version 3 (usage counters), policy
// durations, license overrides at creation and by UpdateLicense.
func goldenHistoryV3(h *harness) {
	h.versions = map[CommandType]byte{CmdCheckout: 3}
	h.seed() // p1; pol1 (cad: 2 seats, view: uncounted, ttl 60 s); lic1 with key-1
	m := func(i int) Holder {
		return Holder{Machine: "m" + string(rune('0'+i)), User: "u", Hostname: "h", Process: "cad.exe"}
	}
	ok := func(r *Result) { mustOK(h.tb, r) }
	ok(h.apply(CmdCreatePolicy, CreatePolicy{Time: t0 + sec, Policy: Policy{ID: "pol2", ProductID: "p1", Name: "term",
		LeaseTTL: 60 * sec, MaxBorrowHours: 24, Duration: 30 * day, Features: []Feature{{Name: "cad", Seats: 1}}}}))
	ok(h.apply(CmdCreateLicense, CreateLicense{Time: t0 + 2*sec, License: License{ID: "lic2", Key: "key-2",
		PolicyID: "pol2", Customer: "globex", Overrides: &Overrides{Seats: []Feature{{Name: "cad", Seats: 3}}, LeaseTTL: 120 * sec}}}))
	ok(h.apply(CmdRegisterKey, RegisterKey{Key: SigningKey{KID: "n1-0", NodeID: "n1", PublicKey: bytes.Repeat([]byte{7}, 32)}, Time: t0}))
	ok(h.apply(CmdRotateKeys, RotateKeys{Time: t0 + 3*sec}))
	ok(h.apply(CmdRetireKey, RetireKey{KID: "n1-0", Time: t0 + 3*sec}))
	co2 := func(lease string, i int, req string, at int64) Checkout {
		return Checkout{LeaseID: lease, LicenseKey: "key-2", Feature: "cad", Holder: m(i), RequestID: req, Time: at}
	}
	ok(h.apply(CmdCheckout, co2("l1", 1, "req-1", t0+10*sec)))
	ok(h.apply(CmdCheckout, co2("l1-retry", 1, "req-1", t0+11*sec)))
	ok(h.apply(CmdCheckout, co2("l2", 2, "req-2", t0+12*sec)))
	borrowed := co2("l3", 3, "req-3", t0+13*sec)
	borrowed.BorrowHours = 12
	ok(h.apply(CmdCheckout, borrowed))
	h.apply(CmdCheckout, co2("l4", 4, "req-4", t0+14*sec)) // no seats: 3 of the override's 3
	h.apply(CmdCheckout, Checkout{LeaseID: "l4b", LicenseKey: "key-2", Feature: "render", Holder: m(4),
		Time: t0 + 14*sec}) // not entitled: audited, not counted
	ok(h.apply(CmdCheckin, Checkin{LeaseID: "l1", LicenseKey: "key-2", Time: t0 + 15*sec}))
	ok(h.apply(CmdUpdateLicense, UpdateLicense{ID: "lic2", Overrides: &Overrides{Seats: []Feature{{Name: "cad", Seats: 1}}},
		Time: t0 + 16*sec}))
	h.apply(CmdCheckout, co2("l5", 5, "", t0+17*sec)) // no seats: 2 in use of 1
	ok(h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol2", Duration: ptr(60 * day), Time: t0 + 18*sec}))
	ok(h.apply(CmdCreateLicense, CreateLicense{Time: t0 + 19*sec, License: License{ID: "lic3", Key: "key-3",
		PolicyID: "pol2", Customer: "initech"}}))
	ok(h.apply(CmdCheckpointLeases, CheckpointLeases{Time: t0 + 20*sec,
		Leases: []LeaseDeadline{{LeaseID: "l2", ExpiresAt: t0 + 300*sec}}}))
	ok(h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{"l2"}, Time: t0 + 200*sec})) // not due
	ok(h.apply(CmdRevokeLease, RevokeLease{LeaseID: "l2", Time: t0 + 210*sec}))
	ok(h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusSuspended, Time: t0 + 220*sec}))
	h.apply(CmdCheckout, co("l6", "cad", m(6), "", t0+221*sec)) // suspended
	ok(h.apply(CmdCheckout, Checkout{LeaseID: "l7", LicenseKey: "key-3", Feature: "cad", Holder: m(7), Time: t0 + 230*sec}))
	ok(h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{"l7"}, Time: t0 + 290*sec}))
}

func checkGoldenStateV3(t *testing.T, f *FSM) {
	t.Helper()
	if p, _ := f.Policy("pol2"); p.Duration != 60*day {
		t.Fatalf("pol2 = %+v", p)
	}
	l2, _ := f.License("lic2")
	if l2.ExpiresAt != t0+2*sec+30*day || l2.Overrides == nil || !slices.Equal(l2.Overrides.Seats, []Feature{{Name: "cad", Seats: 1}}) || l2.Overrides.LeaseTTL != 0 {
		t.Fatalf("lic2 = %+v overrides %+v", l2, l2.Overrides)
	}
	if l3, _ := f.License("lic3"); l3.ExpiresAt != t0+19*sec+60*day || l3.Overrides != nil {
		t.Fatalf("lic3 = %+v", l3)
	}
	if u := f.Usage("lic2")["cad"]; u != (SeatUsage{Total: 1, InUse: 1}) {
		t.Fatalf("lic2 seats = %+v", u)
	}
	if l3, ok := f.Lease("l3"); !ok || l3.BorrowedUntil != t0+13*sec+12*hour || f.LeaseCount() != 1 {
		t.Fatalf("l3 = %+v %v, leases %d", l3, ok, f.LeaseCount())
	}
	want := map[string]map[string]FeatureCounters{
		"lic1": {"cad": {Denied: 1}, "view": {}},
		"lic2": {"cad": {Granted: 3, Denied: 2, PeakInUse: 3, PeakAt: t0 + 13*sec}},
		"lic3": {"cad": {Granted: 1, PeakInUse: 1, PeakAt: t0 + 230*sec}},
	}
	for lic, byFeature := range want {
		got := f.UsageCounters(lic)
		if len(got) != len(byFeature) {
			t.Fatalf("%s counters = %+v, want %+v", lic, got, byFeature)
		}
		for feat, c := range byFeature {
			if got[feat] != c {
				t.Fatalf("%s/%s counters = %+v, want %+v", lic, feat, got[feat], c)
			}
		}
	}
	var updated bool
	for _, r := range f.Audit(0, 0) {
		updated = updated || r.Type == AuditLicenseUpdated && r.LicenseID == "lic2" && r.Detail == "changed=overrides seats=cad:1"
	}
	if !updated {
		t.Fatal("no license.updated record for lic2's new overrides")
	}
	if err := VerifyChain(f.Audit(0, 0)); err != nil {
		t.Fatal(err)
	}
}

package fsm

import (
	"bytes"
	"testing"
)

// goldenHistoryV4 applies a fixed history that touches every command of
// the v4 generation: Checkout at body version 4, whose leases and borrows
// end no later than their license.
func goldenHistoryV4(h *harness) {
	h.seed() // p1; pol1 (cad: 2 seats, view: uncounted, ttl 60 s); lic1 with key-1
	m := func(i int) Holder {
		return Holder{Machine: "m" + string(rune('0'+i)), User: "u", Hostname: "h", Process: "cad.exe"}
	}
	ok := func(r *Result) { mustOK(h.tb, r) }
	ok(h.apply(CmdCreatePolicy, CreatePolicy{Time: t0 + sec, Policy: Policy{ID: "pol2", ProductID: "p1", Name: "term",
		LeaseTTL: 60 * sec, MaxBorrowHours: 72, Features: []Feature{{Name: "cad", Seats: 3}}}}))
	// lic2 expires 90 s in: its leases are capped there.
	ok(h.apply(CmdCreateLicense, CreateLicense{Time: t0 + 2*sec, License: License{ID: "lic2", Key: "key-2",
		PolicyID: "pol2", Customer: "globex", ExpiresAt: t0 + 90*sec}}))
	ok(h.apply(CmdRegisterKey, RegisterKey{Key: SigningKey{KID: "n1-0", NodeID: "n1", PublicKey: bytes.Repeat([]byte{7}, 32)}, Time: t0}))
	ok(h.apply(CmdRotateKeys, RotateKeys{Time: t0 + 3*sec}))
	ok(h.apply(CmdRetireKey, RetireKey{KID: "n1-0", Time: t0 + 3*sec}))
	co2 := func(lease string, i int, req string, at int64) Checkout {
		return Checkout{LeaseID: lease, LicenseKey: "key-2", Feature: "cad", Holder: m(i), RequestID: req, Time: at}
	}
	ok(h.apply(CmdCheckout, co2("l1", 1, "req-1", t0+10*sec)))   // ends at t0+70s, before the license
	ok(h.apply(CmdCheckout, co2("l2", 2, "req-2", t0+50*sec)))   // capped at t0+90s
	ok(h.apply(CmdCheckout, co2("l2-r", 2, "req-2", t0+51*sec))) // retry
	borrowed := co2("l3", 3, "req-3", t0+55*sec)
	borrowed.BorrowHours = 72 // capped at t0+90s
	ok(h.apply(CmdCheckout, borrowed))
	h.apply(CmdCheckout, co2("l4", 4, "", t0+56*sec))                   // no seats
	ok(h.apply(CmdCheckout, co("l5", "cad", m(5), "req-5", t0+57*sec))) // lic1 never expires: full TTL
	ok(h.apply(CmdCheckin, Checkin{LeaseID: "l1", LicenseKey: "key-2", Time: t0 + 58*sec}))
	ok(h.apply(CmdUpdateLicense, UpdateLicense{ID: "lic1", Overrides: &Overrides{Seats: []Feature{{Name: "cad", Seats: 4}}},
		Time: t0 + 59*sec}))
	ok(h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", LeaseTTL: ptr(120 * sec), Time: t0 + 60*sec}))
	ok(h.apply(CmdCheckpointLeases, CheckpointLeases{Time: t0 + 61*sec,
		Leases: []LeaseDeadline{{LeaseID: "l5", ExpiresAt: t0 + 200*sec}}}))
	ok(h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{"l2", "l3"}, Time: t0 + 90*sec})) // due with lic2
	h.apply(CmdCheckout, co2("l6", 6, "", t0+91*sec))                                             // expired
	ok(h.apply(CmdRevokeLease, RevokeLease{LeaseID: "l5", Time: t0 + 100*sec}))
	ok(h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusSuspended, Time: t0 + 110*sec}))
	ok(h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusActive, Time: t0 + 111*sec}))
	ok(h.apply(CmdCheckout, co("l7", "view", m(7), "", t0+120*sec)))
}

func checkGoldenStateV4(t *testing.T, f *FSM) {
	t.Helper()
	for _, id := range []string{"l1", "l2", "l3", "l5"} {
		if !f.LeaseEnded(id) {
			t.Fatalf("lease %s not remembered as ended", id)
		}
	}
	l7, ok := f.Lease("l7")
	if !ok || f.LeaseCount() != 1 || l7.ExpiresAt != t0+240*sec {
		t.Fatalf("l7 = %+v %v, leases %d", l7, ok, f.LeaseCount())
	}
	var expired []string
	for _, r := range f.Audit(0, 0) {
		if r.Type == AuditLeaseExpired {
			expired = append(expired, r.LeaseID)
		}
		if r.Type == AuditLeaseCheckout && r.LeaseID == "l3" && r.Detail != "borrow hours=72 until=2027-01-15T08:01:30Z" {
			t.Fatalf("l3's checkout record says %q", r.Detail)
		}
	}
	if len(expired) != 2 || expired[0] != "l2" || expired[1] != "l3" {
		t.Fatalf("expired at the license's expiry: %v", expired)
	}
	if c := f.UsageCounters("lic2")["cad"]; c != (FeatureCounters{Granted: 3, Denied: 2, PeakInUse: 3, PeakAt: t0 + 55*sec}) {
		t.Fatalf("lic2 counters = %+v", c)
	}
	if err := VerifyChain(f.Audit(0, 0)); err != nil {
		t.Fatal(err)
	}
}

package fsm

import (
	"bytes"
	"os"
	"slices"
	"testing"
)

// goldenHistoryV2 applies a fixed history that touches every command of
// the v2 generation, Checkout at body version 2 (refusals audited),
// borrowing, TTL overrides and key rotation included.
func goldenHistoryV2(h *harness) {
	h.versions = map[CommandType]byte{CmdCheckout: 2}
	h.seed() // p1; pol1 (cad: 2 seats, view: uncounted, ttl 60 s); lic1 with key-1
	m := func(i int) Holder {
		return Holder{Machine: "m" + string(rune('0'+i)), User: "u", Hostname: "h", Process: "cad.exe"}
	}
	ok := func(r *Result) { mustOK(h.tb, r) }
	ok(h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", Name: ptr("standard-2"), LeaseTTL: ptr(90 * sec),
		MaxBorrowHours: ptr(int64(72)), Time: t0 + sec}))
	ok(h.apply(CmdRegisterKey, RegisterKey{Key: SigningKey{KID: "n1-0", NodeID: "n1", PublicKey: bytes.Repeat([]byte{7}, 32)}, Time: t0}))
	ok(h.apply(CmdRotateKeys, RotateKeys{Time: t0 + 2*sec}))
	ok(h.apply(CmdRegisterKey, RegisterKey{Key: SigningKey{KID: "n1-1", NodeID: "n1", Epoch: 1,
		PublicKey: bytes.Repeat([]byte{8}, 32)}, Time: t0 + 2*sec}))
	ok(h.apply(CmdRetireKey, RetireKey{KID: "n1-0", Time: t0 + 3*sec}))
	ok(h.apply(CmdCreateLicense, CreateLicense{Time: t0 + 3*sec, License: License{ID: "lic2", Key: "key-2",
		PolicyID: "pol1", Customer: "globex", ExpiresAt: t0 + 24*60*min, Metadata: map[string]string{"b": "2", "a": "1"}}}))
	ok(h.apply(CmdCheckout, co("l1", "cad", m(1), "req-1", t0+4*sec)))
	ok(h.apply(CmdCheckout, co("l1-retry", "cad", m(1), "req-1", t0+5*sec)))
	ok(h.apply(CmdCheckout, Checkout{LeaseID: "l2", LicenseKey: "key-1", Feature: "cad", Holder: m(2),
		RequestID: "req-2", BorrowHours: 48, Time: t0 + 6*sec}))
	h.apply(CmdCheckout, co("l3", "cad", m(3), "req-3", t0+7*sec)) // no seats
	h.apply(CmdCheckout, co("l3b", "render", m(3), "", t0+7*sec))  // feature not entitled
	ok(h.apply(CmdCheckout, Checkout{LeaseID: "l4", LicenseKey: "key-1", Feature: "view", Holder: m(4),
		TTL: 10 * sec, Time: t0 + 8*sec}))
	ok(h.apply(CmdCheckin, Checkin{LeaseID: "l1", LicenseKey: "key-1", Time: t0 + 9*sec}))
	ok(h.apply(CmdCheckpointLeases, CheckpointLeases{Time: t0 + 10*sec,
		Leases: []LeaseDeadline{{LeaseID: "l4", ExpiresAt: t0 + 200*sec}}}))
	ok(h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{"l4"}, Time: t0 + 100*sec})) // not due: checkpointed
	ok(h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic2", Status: StatusSuspended, Time: t0 + 110*sec}))
	h.apply(CmdCheckout, Checkout{LeaseID: "l5", LicenseKey: "key-2", Feature: "cad", Holder: m(5),
		Time: t0 + 111*sec}) // suspended
	ok(h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic2", Status: StatusActive, Time: t0 + 120*sec}))
	ok(h.apply(CmdCheckout, Checkout{LeaseID: "l6", LicenseKey: "key-2", Feature: "cad", Holder: m(6),
		RequestID: "req-6", Time: t0 + 121*sec}))
	ok(h.apply(CmdCheckout, Checkout{LeaseID: "l7", LicenseKey: "key-2", Feature: "cad", Holder: m(7),
		Time: t0 + 122*sec}))
	ok(h.apply(CmdRevokeLease, RevokeLease{LeaseID: "l7", Time: t0 + 123*sec}))
	ok(h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{"l4"}, Time: t0 + 200*sec}))
	ok(h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusRevoked, Time: t0 + 210*sec}))
}

func checkGoldenStateV2(t *testing.T, f *FSM) {
	t.Helper()
	if p, _ := f.Policy("pol1"); p.Name != "standard-2" || p.LeaseTTL != 90*sec || p.MaxBorrowHours != 72 {
		t.Fatalf("policy = %+v", p)
	}
	if l, _ := f.License("lic1"); l.Status != StatusRevoked {
		t.Fatalf("lic1 = %+v", l)
	}
	if l, _ := f.License("lic2"); l.Status != StatusActive || l.Metadata["a"] != "1" {
		t.Fatalf("lic2 = %+v", l)
	}
	l6, live := f.Lease("l6")
	if !live || f.LeaseCount() != 1 || l6.ExpiresAt != t0+211*sec {
		t.Fatalf("leases: l6 = %+v %v, count %d", l6, live, f.LeaseCount())
	}
	for _, id := range []string{"l1", "l2", "l4", "l7"} {
		if !f.LeaseEnded(id) {
			t.Fatalf("lease %s not remembered as ended", id)
		}
	}
	if f.KeyEpoch() != 1 {
		t.Fatalf("key epoch = %d", f.KeyEpoch())
	}
	if k, _ := f.Key("n1-0"); !k.Retired() {
		t.Fatalf("key n1-0 = %+v, want retired", k)
	}
	recs := f.Audit(0, 0)
	if err := VerifyChain(recs); err != nil {
		t.Fatal(err)
	}
	var types, denied []string
	for _, r := range recs {
		types = append(types, r.Type)
		if r.Type == AuditLeaseDenied {
			denied = append(denied, r.Detail)
		}
	}
	for _, want := range []string{AuditKeysRotated, AuditKeyRetired, AuditLicenseReinstated, AuditLeaseExpired, AuditLeaseRevoked} {
		if !slices.Contains(types, want) {
			t.Fatalf("audit has no %s record: %v", want, types)
		}
	}
	if want := []string{"no_seats_available seats=2 in_use=2", CodeFeatureNotEntitled, CodeLicenseSuspended}; !slices.Equal(denied, want) {
		t.Fatalf("lease.denied details = %q, want %q", denied, want)
	}
	var borrowed bool
	for _, r := range recs {
		borrowed = borrowed || r.LeaseID == "l2" && r.Type == AuditLeaseCheckout && r.Detail != ""
	}
	if !borrowed {
		t.Fatal("no borrow record for l2")
	}
	h := &harness{tb: t, f: f, idx: f.AppliedIndex()}
	r := h.apply(CmdCheckout, Checkout{LeaseID: "l8", LicenseKey: "key-2", Feature: "cad",
		Holder: Holder{Machine: "m9"}, RequestID: "req-6", Time: t0 + 220*sec})
	if !r.Retried || r.Lease.ID != "l6" {
		t.Fatalf("retry after restore = %+v", r)
	}
}

// TestNewestGoldenCoversEveryCommand: the newest golden log holds every
// command type this build applies, each at its current body version. A
// new command or version therefore needs a new golden generation.
func TestNewestGoldenCoversEveryCommand(t *testing.T) {
	newest := goldens[len(goldens)-1]
	data, err := os.ReadFile(newest.path("log"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[CommandType]byte{}
	for rest := data; len(rest) > 0; {
		n := int(rest[0])<<24 | int(rest[1])<<16 | int(rest[2])<<8 | int(rest[3])
		e := rest[4 : 4+n]
		seen[CommandType(e[0])] = e[1]
		rest = rest[4+n:]
	}
	for typ := range New().handlers {
		if v, ok := seen[typ]; !ok || v != currentVersion(typ) {
			t.Errorf("command %d: in the %s log at version %d (present %v), want version %d", typ, newest.name, v, ok, currentVersion(typ))
		}
	}
}

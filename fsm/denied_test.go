package fsm

import (
	"strings"
	"testing"
)

// TestCheckoutRefusalsAudited: at body version 2 every refused checkout of
// a known license writes one lease.denied record whose detail starts with
// the refusal code, naming the feature and holder asked for; an unknown
// key writes nothing. Version 1 entries replay as they were written: only
// "no seats" is audited.
func TestCheckoutRefusalsAudited(t *testing.T) {
	m := Holder{Machine: "m9", User: "zed", Process: "cad.exe"}
	cases := []struct {
		name  string
		setup func(h *harness)
		cmd   Checkout
		code  string
	}{
		{"suspended", func(h *harness) {
			mustOK(h.tb, h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusSuspended, Time: t0}))
		}, co("x", "cad", m, "", t0+sec), CodeLicenseSuspended},
		{"revoked", func(h *harness) {
			mustOK(h.tb, h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusRevoked, Time: t0}))
		}, co("x", "cad", m, "", t0+sec), CodeLicenseRevoked},
		{"expired", func(h *harness) {
			mustOK(h.tb, h.apply(CmdCreateLicense, CreateLicense{Time: t0,
				License: License{ID: "lic-e", Key: "key-e", PolicyID: "pol1", ExpiresAt: t0 + sec}}))
		}, Checkout{LeaseID: "x", LicenseKey: "key-e", Feature: "cad", Holder: m, Time: t0 + sec}, CodeLicenseExpired},
		{"feature not entitled", nil, co("x", "render", m, "", t0+sec), CodeFeatureNotEntitled},
		{"borrow not allowed", nil, Checkout{LeaseID: "x", LicenseKey: "key-1", Feature: "cad", Holder: m,
			BorrowHours: 2, Time: t0 + sec}, CodeBorrowNotAllowed},
		{"retry of an ended lease", func(h *harness) {
			mustOK(h.tb, h.checkout("a", "m1", "r1", t0))
			mustOK(h.tb, h.apply(CmdCheckin, Checkin{LeaseID: "a", LicenseKey: "key-1", Time: t0}))
		}, co("x", "cad", m, "r1", t0+sec), CodeLeaseExpired},
		{"no seats", func(h *harness) {
			mustOK(h.tb, h.checkout("a", "m1", "", t0))
			mustOK(h.tb, h.checkout("b", "m2", "", t0))
		}, co("x", "cad", m, "", t0+sec), CodeNoSeatsAvailable},
		{"unknown key", nil, Checkout{LeaseID: "x", LicenseKey: "nope", Feature: "cad", Holder: m, Time: t0}, CodeUnauthorized},
	}
	for _, tc := range cases {
		for _, version := range []byte{1, checkoutVersion} {
			h := newHarness(t)
			h.seed()
			if tc.setup != nil {
				tc.setup(h)
			}
			head, _ := h.f.AuditHead()
			data, err := encodeVersion(CmdCheckout, version, tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if got := codeOf(h.applyRaw(data)); got != tc.code {
				t.Fatalf("%s v%d: code %q, want %q", tc.name, version, got, tc.code)
			}
			recs := h.f.Audit(head, 0)
			audited := tc.code != CodeUnauthorized && (version >= 2 || tc.code == CodeNoSeatsAvailable)
			if !audited {
				if len(recs) != 0 {
					t.Fatalf("%s v%d: wrote %d records, want none", tc.name, version, len(recs))
				}
				continue
			}
			if len(recs) != 1 {
				t.Fatalf("%s v%d: wrote %d records, want one lease.denied", tc.name, version, len(recs))
			}
			r := recs[0]
			if r.Type != AuditLeaseDenied || !strings.HasPrefix(r.Detail, tc.code) || r.Feature != tc.cmd.Feature ||
				r.Holder == nil || *r.Holder != m || r.LicenseID == "" || r.Time != tc.cmd.Time {
				t.Fatalf("%s v%d: record %+v", tc.name, version, r)
			}
			if err := VerifyChain(h.f.Audit(0, 0)); err != nil {
				t.Fatalf("%s v%d: chain: %v", tc.name, version, err)
			}
		}
	}
}

// TestEncodeWritesCurrentVersions: the node proposes through Encode, so
// Encode must write each command's current body version, and decode must
// refuse a version past it.
func TestEncodeWritesCurrentVersions(t *testing.T) {
	data, err := Encode(CmdCheckout, Checkout{LeaseID: "l", LicenseKey: "k"})
	if err != nil || data[1] != checkoutVersion {
		t.Fatalf("checkout entry %x, %v: want body version %d", data[:2], err, checkoutVersion)
	}
	data, _ = Encode(CmdCheckin, Checkin{LeaseID: "l"})
	if data[1] != 1 {
		t.Fatalf("checkin entry version %d, want 1", data[1])
	}
	f := New()
	for _, v := range []byte{0, checkoutVersion + 1} {
		bad, _ := encodeVersion(CmdCheckout, v, Checkout{LeaseID: "l"})
		if _, _, err := f.decode(bad); err == nil {
			t.Fatalf("checkout body version %d decoded", v)
		}
	}
}

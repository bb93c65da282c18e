package fsm

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCheckoutCappedAtLicenseExpiry: from Checkout body version 4 no lease
// ends after its license, neither a heartbeat lease nor a borrow; older
// entries replay with the deadlines they were written with.
func TestCheckoutCappedAtLicenseExpiry(t *testing.T) {
	const licExp = t0 + min // the license expires a minute in
	tests := []struct {
		name         string
		version      byte
		licExpiresAt int64
		at           int64 // checkout time
		borrowHours  int64
		wantExpires  int64
		wantBorrow   int64
	}{
		{"capped lease", checkoutVersion, licExp, licExp - 30*sec, 0, licExp, 0},
		{"lease ending before the license", checkoutVersion, licExp, t0, 0, t0 + 60*sec, 0},
		{"capped borrow", checkoutVersion, licExp, t0 + sec, 72, licExp, licExp},
		{"license without expiry", checkoutVersion, 0, licExp - 30*sec, 0, licExp + 30*sec, 0},
		{"borrow on a license without expiry", checkoutVersion, 0, t0 + sec, 72, t0 + sec + 72*hour, t0 + sec + 72*hour},
		{"version 3 is not capped", 3, licExp, licExp - 30*sec, 0, licExp + 30*sec, 0},
		{"version 3 borrow is not capped", 3, licExp, t0 + sec, 72, t0 + sec + 72*hour, t0 + sec + 72*hour},
		{"version 1 is not capped", 1, licExp, licExp - 30*sec, 0, licExp + 30*sec, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			seedBorrow(h, 72) // pol1: ttl 60 s, borrows up to 72 h
			mustOK(t, h.apply(CmdCreateLicense, CreateLicense{Time: t0, License: License{ID: "lic-x",
				Key: "key-x", PolicyID: "pol1", ExpiresAt: tt.licExpiresAt}}))
			h.versions = map[CommandType]byte{CmdCheckout: tt.version}
			l := mustOK(t, h.apply(CmdCheckout, Checkout{LeaseID: "l1", LicenseKey: "key-x", Feature: "cad",
				Holder: Holder{Machine: "m1"}, BorrowHours: tt.borrowHours, Time: tt.at})).Lease
			if l.ExpiresAt != tt.wantExpires || l.BorrowedUntil != tt.wantBorrow || l.TTL != 60*sec {
				t.Fatalf("lease expires %d borrowed until %d ttl %d, want %d %d and the policy ttl",
					l.ExpiresAt, l.BorrowedUntil, l.TTL, tt.wantExpires, tt.wantBorrow)
			}
			if stored, _ := h.f.Lease("l1"); stored != *l {
				t.Fatalf("stored %+v, answered %+v", stored, *l)
			}
			timers := h.f.LeaseTimers()
			if len(timers) != 1 || timers[0] != (LeaseTimer{ID: "l1", ExpiresAt: tt.wantExpires, TTL: 60 * sec, Limit: tt.licExpiresAt}) {
				t.Fatalf("lease timers = %+v", timers)
			}
			if tt.wantBorrow != 0 {
				recs := h.f.Audit(0, 0)
				until := time.Unix(0, tt.wantBorrow).UTC().Format(time.RFC3339)
				if d := recs[len(recs)-1].Detail; !strings.Contains(d, fmt.Sprintf("hours=72 until=%s", until)) {
					t.Fatalf("checkout record says %q, want the borrow end %s", d, until)
				}
			}
		})
	}
}

// TestCappedLeaseExpiresWithItsLicense: the expiry index holds a capped
// lease at the license's expiry, and ExpireLeases ends it there.
func TestCappedLeaseExpiresWithItsLicense(t *testing.T) {
	h := newHarness(t)
	h.seed()
	mustOK(t, h.apply(CmdCreateLicense, CreateLicense{Time: t0, License: License{ID: "lic-x",
		Key: "key-x", PolicyID: "pol1", ExpiresAt: t0 + 10*sec}}))
	mustOK(t, h.apply(CmdCheckout, Checkout{LeaseID: "l1", LicenseKey: "key-x", Feature: "cad",
		Holder: Holder{Machine: "m1"}, Time: t0 + sec}))
	if due := h.f.ExpiringBefore(t0+10*sec, 0); len(due) != 1 {
		t.Fatalf("due at the license's expiry: %v", due)
	}
	r := mustOK(t, h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{"l1"}, Time: t0 + 10*sec}))
	if len(r.Ended) != 1 || h.f.LeaseCount() != 0 || h.f.Usage("lic-x")["cad"].InUse != 0 {
		t.Fatalf("ended %v, %d leases left", r.Ended, h.f.LeaseCount())
	}
}

package fsm

import (
	"strings"
	"testing"
	"time"
)

const hour = int64(time.Hour)

// seedBorrow provisions pol1 with 1 cad seat and the given borrow limit.
func seedBorrow(h *harness, maxHours int64) {
	h.tb.Helper()
	h.seed()
	mustOK(h.tb, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", MaxBorrowHours: &maxHours,
		Features: &[]Feature{{Name: "cad", Seats: 1}}, Time: t0}))
}

func borrow(h *harness, lease, machine string, hours, t int64) *Result {
	h.tb.Helper()
	return h.apply(CmdCheckout, Checkout{LeaseID: lease, LicenseKey: "key-1", Feature: "cad",
		Holder: Holder{Machine: machine}, RequestID: "req-" + lease, BorrowHours: hours, Time: t})
}

func TestBorrowLimits(t *testing.T) {
	tests := []struct {
		name      string
		max       int64
		hours     int64
		code      string
		inMessage string
	}{
		{"not allowed", 0, 1, CodeBorrowNotAllowed, "max_borrow_hours is 0"},
		{"over the limit", 72, 73, CodeBorrowNotAllowed, "limit of 72 hours"},
		{"negative", 72, -1, CodeInvalidRequest, "negative"},
		{"at the limit", 72, 72, "", ""},
		{"plain checkout on a no-borrow policy", 0, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			seedBorrow(h, tt.max)
			r := borrow(h, "l1", "m1", tt.hours, t0+sec)
			if got := codeOf(r); got != tt.code {
				t.Fatalf("code %q, want %q (%v)", got, tt.code, refusalOf(r))
			}
			if tt.code != "" {
				if !strings.Contains(r.Refusal.Message, tt.inMessage) {
					t.Fatalf("message %q lacks %q", r.Refusal.Message, tt.inMessage)
				}
				if h.f.LeaseCount() != 0 {
					t.Fatal("a refused borrow took a seat")
				}
				return
			}
			l := r.Lease
			wantEnd := int64(0)
			if tt.hours > 0 {
				wantEnd = t0 + sec + tt.hours*hour
			}
			if l.BorrowedUntil != wantEnd {
				t.Fatalf("borrowed_until = %d, want %d", l.BorrowedUntil, wantEnd)
			}
			if wantEnd != 0 && (l.ExpiresAt != wantEnd || l.TTL != 60*sec) {
				t.Fatalf("borrowed lease expires %d ttl %d, want %d and the policy ttl", l.ExpiresAt, l.TTL, wantEnd)
			}
		})
	}
}

func TestBorrowHoldsSeatUntilItsEnd(t *testing.T) {
	h := newHarness(t)
	seedBorrow(h, 72)
	start := t0 + sec
	l := mustOK(t, borrow(h, "l1", "m1", 48, start)).Lease
	end := start + 48*hour

	// The audit record says it is a borrow.
	recs := h.f.Audit(0, 0)
	last := recs[len(recs)-1]
	if last.Type != AuditLeaseCheckout || !strings.HasPrefix(last.Detail, "borrow hours=48 until=") {
		t.Fatalf("audit record = %+v", last)
	}
	// Long after a heartbeat TTL, with no heartbeat, the seat is taken.
	mustOK(t, h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{"l1"}, Time: start + 24*hour}))
	if _, live := h.f.Lease("l1"); !live {
		t.Fatal("borrowed lease expired a day before its borrow end")
	}
	if got := codeOf(borrow(h, "l2", "m2", 0, start+24*hour)); got != CodeNoSeatsAvailable {
		t.Fatalf("second checkout during the borrow: %q, want no_seats_available", got)
	}
	// The re-arm rule and checkpoints keep the borrow end.
	if due := h.f.ExpiringBefore(end-1, 0); len(due) != 0 {
		t.Fatalf("due before the borrow end: %+v", due)
	}
	// A second before the end it stays; at the end it expires.
	mustOK(t, h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{"l1"}, Time: end - sec}))
	if _, live := h.f.Lease("l1"); !live {
		t.Fatal("expired before the borrow end")
	}
	r := mustOK(t, h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{l.ID}, Time: end}))
	if len(r.Ended) != 1 || h.f.LeaseCount() != 0 {
		t.Fatalf("at the borrow end: ended %v, live %d", r.Ended, h.f.LeaseCount())
	}
	mustOK(t, borrow(h, "l3", "m3", 0, end+sec))
}

func TestBorrowEarlyCheckinFreesSeat(t *testing.T) {
	h := newHarness(t)
	seedBorrow(h, 72)
	mustOK(t, borrow(h, "l1", "m1", 72, t0+sec))
	mustOK(t, h.apply(CmdCheckin, Checkin{LeaseID: "l1", LicenseKey: "key-1", Time: t0 + hour}))
	if u := h.f.Usage("lic1")["cad"]; u.InUse != 0 {
		t.Fatalf("in use after early checkin = %d", u.InUse)
	}
	mustOK(t, borrow(h, "l2", "m2", 1, t0+hour+sec))

	// Borrowed leases survive a snapshot with their borrow end.
	f := restoreBytes(t, snapshotBytes(t, h.f))
	if l, ok := f.Lease("l2"); !ok || l.BorrowedUntil != t0+2*hour+sec {
		t.Fatalf("after restore: %+v %v", l, ok)
	}
	if f.Hash() != h.f.Hash() {
		t.Fatal("restored state hashes differently")
	}
}

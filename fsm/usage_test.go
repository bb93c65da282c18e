package fsm

import (
	"bytes"
	"io"
	"testing"
)

// TestUsageCounters: Checkout entries of body version 3 count grants,
// denials and the peak of seats in use per (license, feature); retries
// and refusals of features the policy lacks count nothing; entries of an
// older version count nothing at all.
func TestUsageCounters(t *testing.T) {
	h := newHarness(t)
	h.seed() // cad: 2 seats, view: uncounted
	at := func(i int) int64 { return t0 + int64(i)*sec }
	mustOK(t, h.checkout("a", "m1", "r1", at(1)))
	mustOK(t, h.checkout("a-retry", "m1", "r1", at(2))) // a retry: nothing counted
	mustOK(t, h.checkout("b", "m2", "", at(3)))         // peak 2
	h.checkout("c", "m3", "", at(4))                    // no seats: denied
	mustOK(t, h.apply(CmdCheckin, Checkin{LeaseID: "a", LicenseKey: "key-1", Time: at(5)}))
	mustOK(t, h.checkout("d", "m4", "", at(6)))                               // back at 2: the peak keeps its first time
	h.apply(CmdCheckout, co("e", "render", Holder{Machine: "m5"}, "", at(7))) // not in the policy: not counted
	mustOK(t, h.apply(CmdCheckout, co("f", "view", Holder{Machine: "m6"}, "", at(8))))
	mustOK(t, h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusSuspended, Time: at(9)}))
	h.apply(CmdCheckout, co("g", "view", Holder{Machine: "m7"}, "", at(10))) // suspended: denied

	want := map[string]FeatureCounters{
		"cad":  {Granted: 3, Denied: 1, PeakInUse: 2, PeakAt: at(3)},
		"view": {Granted: 1, Denied: 1, PeakInUse: 1, PeakAt: at(8)},
	}
	check := func(f *FSM, what string) {
		t.Helper()
		got := f.UsageCounters("lic1")
		if len(got) != len(want) || got["cad"] != want["cad"] || got["view"] != want["view"] {
			t.Fatalf("%s: counters = %+v, want %+v", what, got, want)
		}
	}
	check(h.f, "applied")
	snap := snapshotBytes(t, h.f)
	if !bytes.Contains(snap, []byte(secUsage)) {
		t.Fatal("the snapshot has no usage section")
	}
	g := restoreBytes(t, snap)
	check(g, "restored")
	if g.Hash() != h.f.Hash() {
		t.Fatal("restore changed the hash")
	}
	if h.f.UsageCounters("nope") != nil {
		t.Fatal("counters for an unknown license")
	}

	// A policy that drops a feature keeps its counted history visible.
	mustOK(t, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", Features: &[]Feature{{Name: "cad", Seats: 2}}, Time: at(11)}))
	check(h.f, "after the policy dropped view")
}

// TestUsageCountersNotKeptByOlderCheckouts: a version 2 (or 1) checkout
// replays as it was written, counting nothing, so logs from before the
// counters existed still rebuild the state they built.
func TestUsageCountersNotKeptByOlderCheckouts(t *testing.T) {
	for _, v := range []byte{1, 2} {
		h := newHarness(t)
		h.versions = map[CommandType]byte{CmdCheckout: v}
		h.seed()
		mustOK(t, h.checkout("a", "m1", "", t0))
		mustOK(t, h.checkout("b", "m2", "", t0))
		h.checkout("c", "m3", "", t0)
		if got := h.f.UsageCounters("lic1"); got["cad"] != (FeatureCounters{}) {
			t.Fatalf("v%d: counters = %+v", v, got)
		}
		if bytes.Contains(snapshotBytes(t, h.f), []byte(secUsage)) {
			t.Fatalf("v%d: the snapshot has a usage section", v)
		}
	}
}

// TestSnapshotUsageSectionOrder: a snapshot with a section where usage or
// meta belongs is refused.
func TestSnapshotUsageSectionOrder(t *testing.T) {
	h := newHarness(t)
	h.seed()
	mustOK(t, h.checkout("a", "m1", "", t0))
	good := snapshotBytes(t, h.f)
	bad := bytes.Replace(append([]byte(nil), good...), []byte("\xa5usage"), []byte("\xa5usagX"), 1)
	if bytes.Equal(bad, good) {
		t.Fatal("no usage section to damage")
	}
	if err := New().Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
		t.Fatal("a snapshot with an unknown section before meta restored")
	}
}

package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func TestApplyPanicsOnGarbage(t *testing.T) {
	valid, _ := Encode(CmdCreateProduct, CreateProduct{ID: "p", Name: "n"})
	cases := map[string][]byte{
		"empty":          {},
		"unknown type":   {0x7f, 1, 0x80},
		"no version":     {byte(CmdCheckout)},
		"version 2":      append([]byte{valid[0], 2}, valid[2:]...),
		"bad msgpack":    {byte(CmdCheckout), 1, 0xc1},
		"truncated body": valid[:len(valid)-3],
		"wrong shape":    {byte(CmdExpireLeases), 1, 0x81, 0xa6, 'l', 'e', 'a', 's', 'e', 's', 0x05},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			f := New()
			defer func() {
				if recover() == nil {
					t.Fatalf("Apply(%x) did not panic", data)
				}
				if f.AppliedIndex() != 0 {
					t.Fatalf("applied index moved on a bad entry")
				}
			}()
			f.Apply(&raft.Log{Index: 1, Data: data})
		})
	}
}

func TestApplyIgnoresFlaggedUnknown(t *testing.T) {
	f := New()
	if out := f.Apply(&raft.Log{Index: 7, Data: []byte{byte(IgnoreUnknownFlag | 0x7e), 1, 0xc1}}); out != nil {
		t.Fatalf("Apply = %v, want nil", out)
	}
	if f.AppliedIndex() != 7 {
		t.Fatalf("applied = %d, want 7", f.AppliedIndex())
	}
	// A known type with the flag set is applied, not skipped.
	data, _ := Encode(CmdCreateProduct|IgnoreUnknownFlag, CreateProduct{ID: "p", Name: "n"})
	if r, ok := f.Apply(&raft.Log{Index: 8, Data: data}).(*Result); !ok || r.Product == nil {
		t.Fatalf("flagged known command not applied: %v", r)
	}
}

func TestDeterminism(t *testing.T) {
	build := func() *harness {
		h := newHarness(t)
		h.seed()
		for i := 0; i < 50; i++ {
			now := t0 + int64(i)*10*sec
			h.checkout(fmt.Sprintf("l%d", i), fmt.Sprintf("m%d", i%3), fmt.Sprintf("r%d", i%7), now)
			h.apply(CmdCheckin, Checkin{LeaseID: fmt.Sprintf("l%d", i-2), LicenseKey: "key-1", Time: now})
			h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{fmt.Sprintf("l%d", i-5)}, Time: now})
		}
		return h
	}
	a, b := build(), build()
	if a.f.Hash() != b.f.Hash() {
		t.Fatalf("same log, different hashes")
	}
	c := New()
	for i, data := range a.log[:len(a.log)-1] {
		c.Apply(&raft.Log{Index: uint64(i + 1), Data: data})
	}
	if c.Hash() == a.f.Hash() {
		t.Fatalf("a shorter log gave the same hash")
	}
}

func TestValidate(t *testing.T) {
	h := newHarness(t)
	h.seed()
	mustOK(t, h.apply(CmdCreateLicense, CreateLicense{Time: t0,
		License: License{ID: "lic-e", Key: "key-e", PolicyID: "pol1", ExpiresAt: t0 + min}}))
	mustOK(t, h.checkout("a", "m1", "", t0))
	cases := []struct {
		name, key, feature string
		now                int64
		found, valid       bool
		code               string
	}{
		{"valid", "key-1", "cad", t0, true, true, ""},
		{"valid no feature", "key-1", "", t0, true, true, ""},
		{"unknown key", "nope", "", t0, false, false, ""},
		{"not entitled", "key-1", "render", t0, true, false, CodeFeatureNotEntitled},
		{"before expiry", "key-e", "", t0 + min - 1, true, true, ""},
		{"expired", "key-e", "", t0 + min, true, false, CodeLicenseExpired},
	}
	for _, c := range cases {
		r := h.f.Validate(c.key, c.feature, "", c.now)
		if r.Found != c.found || r.Valid != c.valid || r.Code != c.code {
			t.Errorf("%s: got found=%v valid=%v code=%q", c.name, r.Found, r.Valid, r.Code)
		}
	}
	r := h.f.Validate("key-1", "", "", t0)
	if r.License.ID != "lic1" || r.Policy.ID != "pol1" || r.Seats["cad"] != (SeatUsage{2, 1}) {
		t.Fatalf("validate = %+v", r)
	}
	mustOK(t, h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusSuspended}))
	if r := h.f.Validate("key-1", "", "", t0); r.Valid || r.Code != CodeLicenseSuspended {
		t.Fatalf("suspended: %+v", r)
	}
	mustOK(t, h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusRevoked}))
	if r := h.f.Validate("key-1", "", "", t0); r.Valid || r.Code != CodeLicenseRevoked {
		t.Fatalf("revoked: %+v", r)
	}
}

func TestReadsReturnCopies(t *testing.T) {
	h := newHarness(t)
	h.seed()
	p, _ := h.f.Policy("pol1")
	p.Features[0].Seats = 100
	if q, _ := h.f.Policy("pol1"); q.Features[0].Seats != 2 {
		t.Fatalf("policy read shares its features")
	}
	mustOK(t, h.checkout("a", "m1", "", t0))
	recs := h.f.Audit(0, 0)
	recs[len(recs)-1].Holder.Machine = "evil"
	if err := VerifyChain(h.f.Audit(0, 0)); err != nil {
		t.Fatalf("audit read shares holders: %v", err)
	}
}

func TestExpiringBefore(t *testing.T) {
	h := newHarness(t)
	h.seed()
	mustOK(t, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", Features: &[]Feature{{Name: "cad", Seats: -1}}}))
	for i := 9; i >= 0; i-- {
		mustOK(t, h.apply(CmdCheckout, Checkout{LeaseID: fmt.Sprintf("l%d", i), LicenseKey: "key-1",
			Feature: "cad", Holder: Holder{Machine: "m"}, TTL: int64(i+1) * sec, Time: t0}))
	}
	got := h.f.ExpiringBefore(t0+5*sec, 3)
	if len(got) != 3 || got[0].ID != "l0" || got[2].ID != "l2" {
		t.Fatalf("limit 3: %+v", got)
	}
	if got := h.f.ExpiringBefore(t0+5*sec, 0); len(got) != 5 || got[4].ExpiresAt != t0+5*sec {
		t.Fatalf("no limit: %d leases", len(got))
	}
	if got := h.f.ExpiringBefore(t0, 0); len(got) != 0 {
		t.Fatalf("nothing due yet: %+v", got)
	}
}

func TestAuditReadsAndChain(t *testing.T) {
	h := newHarness(t)
	if idx, hash := h.f.AuditHead(); idx != 0 || hash != "" {
		t.Fatalf("empty head = %d %q", idx, hash)
	}
	h.seed()
	mustOK(t, h.checkout("a", "m1", "", t0+sec))
	all := h.f.Audit(0, 0)
	if len(all) != 4 || all[0].PrevHash != "" || all[3].Type != AuditLeaseCheckout || all[3].Time != t0+sec {
		t.Fatalf("records = %+v", all)
	}
	idx, hash := h.f.AuditHead()
	if idx != 4 || hash != all[3].Hash {
		t.Fatalf("head = %d %s", idx, hash)
	}
	if page := h.f.Audit(1, 2); len(page) != 2 || page[0].Index != 2 || page[1].Index != 3 {
		t.Fatalf("page = %+v", page)
	}
	if len(h.f.Audit(4, 0)) != 0 || len(h.f.Audit(99, 0)) != 0 {
		t.Fatalf("reads past the head")
	}
	if err := VerifyChain(all); err != nil {
		t.Fatalf("chain: %v", err)
	}
	if err := VerifyChain(all[2:]); err != nil {
		t.Fatalf("chain suffix: %v", err)
	}
	tamper := map[string]func(r []AuditRecord){
		"detail":    func(r []AuditRecord) { r[1].Detail = "x" },
		"holder":    func(r []AuditRecord) { r[3].Holder = &Holder{Machine: "x"} },
		"time":      func(r []AuditRecord) { r[2].Time++ },
		"prev link": func(r []AuditRecord) { r[2].PrevHash = r[0].Hash },
		"dropped":   func(r []AuditRecord) { copy(r[1:], r[2:]) },
		"first":     func(r []AuditRecord) { r[0].PrevHash = r[1].Hash },
	}
	for name, mut := range tamper {
		recs := h.f.Audit(0, 0)
		mut(recs)
		if err := VerifyChain(recs); err == nil {
			t.Errorf("tampered %s: chain verified", name)
		}
	}
}

func TestRestoreRejects(t *testing.T) {
	h := newHarness(t)
	h.seed()
	// Past the target's applied index, so the restore is not refused as behind.
	mustOK(t, h.apply(CmdCreateProduct, CreateProduct{ID: "p2", Name: "two", Time: t0}))
	mustOK(t, h.apply(CmdCreateProduct, CreateProduct{ID: "p3", Name: "three", Time: t0}))
	good := snapshotBytes(t, h.f)
	bad := func(mut func(b []byte) []byte) io.ReadCloser {
		return io.NopCloser(bytes.NewReader(mut(append([]byte(nil), good...))))
	}
	// The target holds state the snapshot lacks: a product and a live
	// lease (on its own license) that the restore must drop.
	target := newHarness(t)
	f := target.f
	mustOK(t, target.apply(CmdCreateProduct, CreateProduct{ID: "keep", Name: "k", Time: t0}))
	mustOK(t, target.apply(CmdCreatePolicy, CreatePolicy{Time: t0, Policy: Policy{ID: "polx", ProductID: "keep",
		LeaseTTL: 60 * sec, Features: []Feature{{Name: "cad", Seats: 1}}}}))
	mustOK(t, target.apply(CmdCreateLicense, CreateLicense{Time: t0,
		License: License{ID: "lic1", Key: "key-x", PolicyID: "polx"}}))
	mustOK(t, target.apply(CmdCheckout, Checkout{LeaseID: "stale", LicenseKey: "key-x", Feature: "cad",
		Holder: Holder{Machine: "m1"}, Time: t0}))
	before := f.Hash()
	err := f.Restore(bad(func(b []byte) []byte { b[len(snapshotMagic)] = 2; return b }))
	if !errors.Is(err, ErrSnapshotVersion) {
		t.Fatalf("version 2: %v", err)
	}
	if err := f.Restore(bad(func(b []byte) []byte { b[0] = 'X'; return b })); err == nil {
		t.Fatalf("bad magic restored")
	}
	if err := f.Restore(bad(func(b []byte) []byte { return b[:len(b)-4] })); err == nil {
		t.Fatalf("truncated snapshot restored")
	}
	if f.Hash() != before {
		t.Fatalf("a failed restore changed the state")
	}
	if err := f.Restore(io.NopCloser(bytes.NewReader(good))); err != nil {
		t.Fatalf("good restore: %v", err)
	}
	if _, ok := f.Product("keep"); ok {
		t.Fatalf("restore kept old state")
	}
	if n := f.LeaseCount(); n != 0 {
		t.Fatalf("restore kept %d leases the snapshot does not hold", n)
	}
	if _, ok := f.Lease("stale"); ok || len(f.Leases("")) != 0 || len(f.ExpiringBefore(1<<62, 0)) != 0 {
		t.Fatalf("restore kept the old lease")
	}
	if u := f.Usage("lic1"); u["cad"].InUse != 0 {
		t.Fatalf("usage after restore = %v, want nothing in use", u)
	}
	if f.Hash() != h.f.Hash() {
		t.Fatalf("restored hash differs from the source")
	}
	if !strings.HasPrefix(string(good), snapshotMagic) {
		t.Fatalf("snapshot does not start with the magic")
	}
}

// TestRestoreRefusesOlderSnapshot: a follower never rewinds. A stale
// snapshot is refused and changes nothing; one at the same index or newer
// is installed.
func TestRestoreRefusesOlderSnapshot(t *testing.T) {
	h := newHarness(t)
	h.seed()
	old := snapshotBytes(t, h.f)
	mustOK(t, h.apply(CmdCreateProduct, CreateProduct{ID: "later", Name: "later"}))
	before := h.f.Hash()
	err := h.f.Restore(io.NopCloser(bytes.NewReader(old)))
	if !errors.Is(err, ErrSnapshotBehind) {
		t.Fatalf("restoring an older snapshot: err %v, want ErrSnapshotBehind", err)
	}
	if h.f.Hash() != before {
		t.Fatalf("a refused restore changed the state")
	}
	same := snapshotBytes(t, h.f)
	if err := h.f.Restore(io.NopCloser(bytes.NewReader(same))); err != nil || h.f.Hash() != before {
		t.Fatalf("restoring a snapshot at the applied index: %v", err)
	}
	behind := New()
	if err := behind.Restore(io.NopCloser(bytes.NewReader(old))); err != nil {
		t.Fatalf("a node behind the snapshot refused it: %v", err)
	}
}

// TestConcurrentReads runs readers, snapshots and a restore against a
// stream of Applies; run with -race it proves reads reach state only
// under the lock and get copies.
func TestConcurrentReads(t *testing.T) {
	h := newHarness(t)
	h.seed()
	mustOK(t, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", Features: &[]Feature{{Name: "cad", Seats: -1}}}))
	done := make(chan struct{})
	errs := make(chan error, 4)
	for g := 0; g < 3; g++ {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				for _, l := range h.f.Leases("lic1") {
					h.f.Lease(l.ID)
				}
				h.f.Validate("key-1", "cad", "", t0)
				h.f.ExpiringBefore(t0+sec, 10)
				h.f.Policies()
				if err := VerifyChain(h.f.Audit(0, 0)); err != nil {
					errs <- err
					return
				}
				snap, _ := h.f.Snapshot()
				if err := snap.Persist(&memSink{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 300; i++ {
		now := t0 + int64(i)*sec
		h.checkout(fmt.Sprintf("l%d", i), "m", "", now)
		h.apply(CmdCheckpointLeases, CheckpointLeases{Leases: []LeaseDeadline{{fmt.Sprintf("l%d", i-1), now + min}}, Time: now})
		h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{fmt.Sprintf("l%d", i-5)}, Time: now + 10*min})
		if i == 150 { // a snapshot of the current state: Restore never rewinds
			if err := h.f.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	for g := 0; g < 3; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

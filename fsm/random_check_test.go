package fsm

import "strings"

// check asserts the invariants after one Apply of the random test, each
// against the test's own model rather than the FSM's word.
func (w *world) check(before observation, headIdx uint64, o op, res *Result) {
	t, f := w.t, w.h.f
	t.Helper()
	c := o.checkout
	code := codeOf(res)
	switch {
	case res == nil:
	case res.Retried:
		w.stats["retried"]++
	case code != "":
		w.stats[code]++
	case len(res.Ended) > 0:
		w.stats["ended"]++
	case c != nil && c.BorrowHours > 0:
		w.stats["borrowed"]++
	case c != nil:
		w.stats["granted"]++
	}

	// Audit: the new records link onto the old head and verify; a refused
	// checkout of a known license writes one lease.denied naming its code,
	// other refusals and retries write nothing.
	from := headIdx
	if from > 0 {
		from--
	}
	recs := f.Audit(from, 0)
	if err := VerifyChain(recs); err != nil {
		t.Fatalf("chain after %d: %v", f.AppliedIndex(), err)
	}
	added := f.Audit(headIdx, 0)
	switch {
	case c != nil && code != "" && code != CodeUnauthorized:
		if len(added) != 1 || added[0].Type != AuditLeaseDenied || !strings.HasPrefix(added[0].Detail, code) {
			t.Fatalf("checkout refused with %q wrote %+v, want one lease.denied", code, added)
		}
	case code != "" || res.Retried:
		if len(added) != 0 {
			t.Fatalf("refusal %q / retry wrote %d records", code, len(added))
		}
	}

	// Exactly once: a request id remembered by the model gets the original.
	if c != nil && code != CodeUnauthorized && c.RequestID != "" {
		licID := licenseIDOf(w, c.LicenseKey)
		rec, seen := w.requests[licID][c.RequestID]
		if seen && c.Time-rec.time <= int64(RequestWindow) {
			_, live := before.leases[rec.lease]
			switch {
			case live && (!res.Retried || res.Lease == nil || res.Lease.ID != rec.lease):
				t.Fatalf("retry of %s got %+v code %q, want lease %s", c.RequestID, res.Lease, code, rec.lease)
			case !live && code != CodeLeaseExpired:
				t.Fatalf("retry of ended %s got code %q", c.RequestID, code)
			}
		}
	}
	if res != nil && res.Retried && f.LeaseCount() != len(before.leases) {
		t.Fatalf("a retry changed the lease count")
	}

	if c != nil {
		w.checkCheckout(before, c, res)
	}
	if o.checkpoint != nil {
		// A checkpoint may only move the promise later.
		for _, d := range o.checkpoint.Leases {
			if _, live := before.leases[d.LeaseID]; live && d.ExpiresAt > w.promised[d.LeaseID] {
				w.promised[d.LeaseID] = d.ExpiresAt
			}
		}
	}

	// Expiry never ends a lease before the latest deadline it was promised.
	if res != nil {
		for _, id := range res.Ended {
			if _, ok := before.leases[id]; !ok {
				t.Fatalf("ended %s which was not live", id)
			}
			if o.typ == CmdExpireLeases && w.promised[id] > w.now {
				t.Fatalf("expired %s at %d before its promised deadline %d", id, w.now, w.promised[id])
			}
		}
	}
	w.checkKeys(o, res, added)

	// Seats: never more than the policy grants, unless lowered; then no growth.
	after := w.observe()
	w.last = after
	for id, l := range after.leases {
		if l.ExpiresAt != w.promised[id] {
			t.Fatalf("lease %s holds deadline %d, the model promised %d", id, l.ExpiresAt, w.promised[id])
		}
	}
	for _, lic := range w.licenses {
		pol, _ := f.Policy(lic.PolicyID)
		usage := f.Usage(lic.ID)
		for _, feat := range pol.Features {
			slot := lic.ID + "/" + feat.Name
			n := len(after.seats[slot])
			if usage[feat.Name].InUse != n {
				t.Fatalf("%s: usage says %d in use, leases say %d", slot, usage[feat.Name].InUse, n)
			}
			seats := w.seats(lic.ID, pol, feat.Name)
			if usage[feat.Name].Total != max(seats, -1) {
				t.Fatalf("%s: usage says %d seats, the model %d", slot, usage[feat.Name].Total, seats)
			}
			if seats < 0 || n <= seats {
				continue
			}
			w.stats["over_lowered_limit"]++
			lowered := w.lowered[pol.ID] || w.lowered[lic.ID]
			if !lowered || n > len(before.seats[slot]) {
				t.Fatalf("%s: %d seats in use of %d (before %d, lowered %v)", slot, n, seats,
					len(before.seats[slot]), lowered)
			}
		}
	}
	if n := len(f.ExpiringBefore(1<<62, 0)); n != f.LeaseCount() {
		t.Fatalf("expiry index holds %d of %d leases", n, f.LeaseCount())
	}
}

// checkCheckout checks a checkout's answer against the model's seats and
// records what a grant occupies and the deadline it promised.
func (w *world) checkCheckout(before observation, c *Checkout, res *Result) {
	t, f := w.t, w.h.f
	t.Helper()
	code := codeOf(res)
	lic, known := f.LicenseByKey(c.LicenseKey)
	if !known {
		return
	}
	pol, _ := f.Policy(lic.PolicyID)
	feat, entitled := pol.feature(c.Feature)
	feat.Seats = w.seats(lic.ID, pol, c.Feature)
	slot := before.seats[lic.ID+"/"+c.Feature]
	mine := modelSeatKey(pol.SeatRule, Lease{ID: c.LeaseID, Holder: c.Holder})
	defer w.checkCounters(lic.ID)
	if w.counters[lic.ID] == nil {
		w.counters[lic.ID] = map[string]FeatureCounters{}
	}
	if code != "" && entitled {
		cs := w.counters[lic.ID][c.Feature]
		cs.Denied++
		w.counters[lic.ID][c.Feature] = cs
	}

	// A "no seats" refusal is only right when every seat is taken and the
	// holder's seat key does not already hold one of them.
	if code == CodeNoSeatsAvailable {
		if feat.Seats < 0 || len(slot) < feat.Seats || slot[mine] {
			t.Fatalf("no_seats_available for %s on %s/%s with %d of %d seats in use (holder's seat %q held: %v)",
				c.LeaseID, lic.ID, c.Feature, len(slot), feat.Seats, mine, slot[mine])
		}
		return
	}
	if code != "" || res.Retried {
		return
	}
	l := *res.Lease
	w.seatOf[l.ID] = modelSeatKey(pol.SeatRule, l)
	w.issued = append(w.issued, l.ID)
	if c.RequestID != "" {
		if w.requests[lic.ID] == nil {
			w.requests[lic.ID] = map[string]reqRec{}
		}
		w.requests[lic.ID][c.RequestID] = reqRec{lease: l.ID, time: c.Time}
	}
	if feat.Seats >= 0 && !slot[w.seatOf[l.ID]] && len(slot) >= feat.Seats {
		t.Fatalf("lease %s took a new seat on %s/%s with %d of %d in use", l.ID, lic.ID, l.Feature, len(slot), feat.Seats)
	}
	cs := w.counters[lic.ID][l.Feature]
	cs.Granted++
	inUse := len(slot)
	if !slot[w.seatOf[l.ID]] {
		inUse++
	}
	if inUse > cs.PeakInUse {
		cs.PeakInUse, cs.PeakAt = inUse, c.Time
	}
	w.counters[lic.ID][l.Feature] = cs
	want := c.Time + pol.LeaseTTL
	if ttl := w.ttlOver[lic.ID]; ttl > 0 {
		want = c.Time + ttl
	}
	switch {
	case c.BorrowHours > 0:
		want = c.Time + c.BorrowHours*hour
	case c.TTL > 0:
		want = c.Time + c.TTL
	}
	if lic.ExpiresAt != 0 && want > lic.ExpiresAt {
		// No lease outlives its license (Checkout body version 4).
		want = lic.ExpiresAt
		w.stats["capped_at_license_expiry"]++
	}
	if l.ExpiresAt != want {
		t.Fatalf("lease %s granted until %d, want %d", l.ID, l.ExpiresAt, want)
	}
	var wantBorrow int64 // a borrow ends at its deadline; other leases have none
	if c.BorrowHours > 0 {
		wantBorrow = want
	}
	if l.BorrowedUntil != wantBorrow {
		t.Fatalf("lease %s borrowed until %d, want %d", l.ID, l.BorrowedUntil, wantBorrow)
	}
	w.promised[l.ID] = l.ExpiresAt
}

// checkCounters compares a license's usage counters with the model's.
func (w *world) checkCounters(licenseID string) {
	w.t.Helper()
	got := w.h.f.UsageCounters(licenseID)
	for feat, want := range w.counters[licenseID] {
		if got[feat] != want {
			w.t.Fatalf("%s/%s counters = %+v, the model %+v", licenseID, feat, got[feat], want)
		}
	}
	for feat, c := range got {
		if _, ok := w.counters[licenseID][feat]; !ok && c != (FeatureCounters{}) {
			w.t.Fatalf("%s/%s counters = %+v, the model has none", licenseID, feat, c)
		}
	}
}

// checkKeys checks the signing-key commands against the model's keys and
// epoch.
func (w *world) checkKeys(o op, res *Result, added []AuditRecord) {
	t := w.t
	t.Helper()
	code := codeOf(res)
	types := make([]string, len(added))
	for i, r := range added {
		types[i] = r.Type
	}
	got := strings.Join(types, ",")
	switch o.typ {
	case CmdRegisterKey:
		if code != "" || got != "" {
			t.Fatalf("register %s: code %q, audit %q", o.kid, code, got)
		}
		if w.keys[o.kid] == nil {
			w.keys[o.kid] = &modelKey{epoch: o.keyEpoch}
		}
	case CmdRotateKeys:
		want := w.epoch
		for _, k := range w.keys {
			if k.epoch > want {
				want = k.epoch
			}
		}
		want++
		if code != "" || res.KeyEpoch != want || w.h.f.KeyEpoch() != want || got != AuditKeysRotated {
			t.Fatalf("rotate: code %q epoch %d (state %d), want %d; audit %q", code, res.KeyEpoch, w.h.f.KeyEpoch(), want, got)
		}
		w.epoch = want
		w.stats["rotated"]++
	case CmdRetireKey:
		k := w.keys[o.kid]
		wantCode, wantAudit := "", ""
		switch {
		case k == nil:
			wantCode = CodeNotFound
		case k.retired:
		case k.epoch >= w.epoch:
			wantCode = CodeKeyInUse
		default:
			wantAudit = AuditKeyRetired
			k.retired = true
			w.stats["key_retired"]++
		}
		if code != wantCode || got != wantAudit {
			t.Fatalf("retire %s: code %q audit %q, want %q %q", o.kid, code, got, wantCode, wantAudit)
		}
	}
}

func licenseIDOf(w *world, key string) string {
	for _, l := range w.licenses {
		if l.Key == key {
			return l.ID
		}
	}
	return ""
}

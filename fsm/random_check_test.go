package fsm

// check asserts the invariants after one Apply of the random test.
func (w *world) check(before observation, headIdx uint64, c *Checkout, res *Result) {
	t, f := w.t, w.h.f
	t.Helper()
	code := codeOf(res)
	switch {
	case res == nil:
	case res.Retried:
		w.stats["retried"]++
	case code != "":
		w.stats[code]++
	case len(res.Ended) > 0:
		w.stats["ended"]++
	case c != nil:
		w.stats["granted"]++
	}

	// Audit: the new records link onto the old head and verify; refusals
	// write nothing except a lease.denied for no seats; retries write nothing.
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
	case code == CodeNoSeatsAvailable:
		if len(added) != 1 || added[0].Type != AuditLeaseDenied {
			t.Fatalf("no seats wrote %d records", len(added))
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

	// Record what a granted checkout occupies, by the model's rule.
	if c != nil && code == "" && !res.Retried {
		lic, _ := f.LicenseByKey(c.LicenseKey)
		pol, _ := f.Policy(lic.PolicyID)
		l := *res.Lease
		w.seatOf[l.ID] = modelSeatKey(pol.SeatRule, l)
		w.issued = append(w.issued, l.ID)
		if c.RequestID != "" {
			if w.requests[lic.ID] == nil {
				w.requests[lic.ID] = map[string]reqRec{}
			}
			w.requests[lic.ID][c.RequestID] = reqRec{lease: l.ID, time: c.Time}
		}
		slot := before.seats[lic.ID+"/"+l.Feature]
		if feat, _ := pol.feature(l.Feature); feat.Seats >= 0 && !slot[w.seatOf[l.ID]] && len(slot) >= feat.Seats {
			t.Fatalf("lease %s took a new seat on %s/%s with %d of %d in use", l.ID, lic.ID, l.Feature, len(slot), feat.Seats)
		}
	}

	// Expiry never ends a lease before its stored deadline.
	if res != nil {
		for _, id := range res.Ended {
			if l, ok := before.leases[id]; !ok {
				t.Fatalf("ended %s which was not live", id)
			} else if code == "" && len(added) > 0 && added[0].Type == AuditLeaseExpired && l.ExpiresAt > w.now {
				t.Fatalf("expired %s at %d before its deadline %d", id, w.now, l.ExpiresAt)
			}
		}
	}

	// Seats: never more than the policy grants, unless lowered; then no growth.
	after := w.observe()
	w.last = after
	for _, lic := range w.licenses {
		pol, _ := f.Policy(lic.PolicyID)
		usage := f.Usage(lic.ID)
		for _, feat := range pol.Features {
			slot := lic.ID + "/" + feat.Name
			n := len(after.seats[slot])
			if usage[feat.Name].InUse != n {
				t.Fatalf("%s: usage says %d in use, leases say %d", slot, usage[feat.Name].InUse, n)
			}
			if feat.Seats < 0 || n <= feat.Seats {
				continue
			}
			w.stats["over_lowered_limit"]++
			if !w.lowered[pol.ID] || n > len(before.seats[slot]) {
				t.Fatalf("%s: %d seats in use of %d (before %d, lowered %v)", slot, n, feat.Seats,
					len(before.seats[slot]), w.lowered[pol.ID])
			}
		}
	}
	if n := len(f.ExpiringBefore(1<<62, 0)); n != f.LeaseCount() {
		t.Fatalf("expiry index holds %d of %d leases", n, f.LeaseCount())
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

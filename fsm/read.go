package fsm

import (
	"encoding/hex"
	"maps"
	"slices"
	"sort"
)

// Reads take the read lock through read(), the one way to reach the state
// outside Apply and Restore, and return copies the caller may keep.

func (f *FSM) read(fn func(s *state)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

// AppliedIndex is the Raft index of the last applied entry.
func (f *FSM) AppliedIndex() (idx uint64) {
	f.read(func(s *state) { idx = s.applied })
	return idx
}

func (f *FSM) Product(id string) (p Product, ok bool) {
	f.read(func(s *state) { p, ok = s.products[id] })
	return p, ok
}

// Products returns every product, sorted by id.
func (f *FSM) Products() (out []Product) {
	f.read(func(s *state) { out = sortedValues(s.products, func(p Product) Product { return p }) })
	return out
}

func (f *FSM) Policy(id string) (p Policy, ok bool) {
	f.read(func(s *state) { p, ok = s.policies[id] })
	return clonePolicy(p), ok
}

// Policies returns every policy, sorted by id.
func (f *FSM) Policies() (out []Policy) {
	f.read(func(s *state) { out = sortedValues(s.policies, clonePolicy) })
	return out
}

func (f *FSM) License(id string) (l License, ok bool) {
	f.read(func(s *state) { l, ok = s.licenses[id] })
	return cloneLicense(l), ok
}

func (f *FSM) LicenseByKey(key string) (l License, ok bool) {
	f.read(func(s *state) { l, ok = s.licenseForKey(key) })
	return cloneLicense(l), ok
}

// Licenses returns every license, sorted by id.
func (f *FSM) Licenses() (out []License) {
	f.read(func(s *state) { out = sortedValues(s.licenses, cloneLicense) })
	return out
}

// Usage returns every feature of the license's policy with its seats:
// Total < 0 when not counted, InUse the distinct seat keys held. It returns
// nil for an unknown license.
func (f *FSM) Usage(licenseID string) (out map[string]SeatUsage) {
	f.read(func(s *state) { out = s.usage(licenseID) })
	return out
}

func (s *state) usage(licenseID string) map[string]SeatUsage {
	l, ok := s.licenses[licenseID]
	if !ok {
		return nil
	}
	pol := s.policies[l.PolicyID]
	out := make(map[string]SeatUsage, len(pol.Features))
	for _, feat := range pol.Features {
		feat, _ = licenseFeature(l, pol, feat.Name)
		total := feat.Seats
		if total < 0 {
			total = -1
		}
		out[feat.Name] = SeatUsage{Total: total, InUse: s.seats[seatSlot{licenseID, feat.Name}].inUse()}
	}
	return out
}

func (f *FSM) Lease(id string) (l Lease, ok bool) {
	f.read(func(s *state) {
		if ll, live := s.leases[id]; live {
			l, ok = ll.Lease, true
		}
	})
	return l, ok
}

// Leases returns the live leases of a license ("" for all), sorted by id.
func (f *FSM) Leases(licenseID string) (out []Lease) {
	f.read(func(s *state) {
		if licenseID == "" {
			out = make([]Lease, 0, len(s.leases))
			for _, ll := range s.leases {
				out = append(out, ll.Lease)
			}
		} else {
			for id := range s.leasesByLicense[licenseID] {
				out = append(out, s.leases[id].Lease)
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LeaseTimer is what a new leader needs to arm one live lease.
type LeaseTimer struct {
	ID        string
	ExpiresAt int64 // replicated deadline, Unix ns
	TTL       int64 // ns
	// Limit is the lease's hard limit, its license's expiry (Unix ns; 0
	// for none): no deadline the leader holds may pass it. It is derived
	// from the license, not stored with the lease.
	Limit int64
}

// LeaseTimers lists every live lease's deadline, TTL and limit, unordered.
// It is Leases("") for the lessor: at a million leases a full copy of each
// would be about 170 MB of garbage on every election, this is 48 MB, and
// the ids are the state's own strings.
func (f *FSM) LeaseTimers() (out []LeaseTimer) {
	f.read(func(s *state) {
		out = make([]LeaseTimer, 0, len(s.leases))
		for _, ll := range s.leases {
			out = append(out, LeaseTimer{ID: ll.ID, ExpiresAt: ll.ExpiresAt, TTL: ll.TTL,
				Limit: s.licenses[ll.LicenseID].ExpiresAt})
		}
	})
	return out
}

// LeaseCount is the number of live leases.
func (f *FSM) LeaseCount() (n int) {
	f.read(func(s *state) { n = len(s.leases) })
	return n
}

// LeaseEnded reports whether the lease ended (checkin, expiry or revoke)
// within the last EndedWindow of log time.
func (f *FSM) LeaseEnded(id string) (ok bool) {
	f.read(func(s *state) { _, ok = s.ended[id] })
	return ok
}

// ExpiringBefore returns live leases whose replicated deadline is <= t,
// earliest first, at most limit of them (limit <= 0: no limit).
func (f *FSM) ExpiringBefore(t int64, limit int) (out []Lease) {
	f.read(func(s *state) {
		s.expiry.Ascend(func(it expiryItem) bool {
			if it.ExpiresAt > t || (limit > 0 && len(out) >= limit) {
				return false
			}
			out = append(out, s.leases[it.LeaseID].Lease)
			return true
		})
	})
	return out
}

// Audit returns records with Index > after, in order, at most limit of them
// (limit <= 0: no limit).
func (f *FSM) Audit(after uint64, limit int) (out []AuditRecord) {
	f.read(func(s *state) { out = s.audit.records(after, limit) })
	return out
}

// AuditHead returns the last record's index and hash; (0, "") when empty.
func (f *FSM) AuditHead() (idx uint64, hash string) {
	f.read(func(s *state) {
		if h, ok := s.audit.lastHash(); ok {
			idx, hash = s.audit.n, hex.EncodeToString(h[:])
		}
	})
	return idx, hash
}

// Keys returns every registered signing key, retired ones included,
// sorted by key id.
func (f *FSM) Keys() (out []SigningKey) {
	f.read(func(s *state) { out = sortedValues(s.keys, cloneKey) })
	return out
}

// ValidateResult answers "is this license valid?" from local state.
type ValidateResult struct {
	Found   bool
	Valid   bool
	Code    string // "" when valid, else a Code* refusal code
	License License
	Policy  Policy
	Seats   map[string]SeatUsage
}

// Validate checks a license key at time now: unknown key → Found false;
// otherwise Valid, or Code license_suspended, license_revoked,
// license_expired or feature_not_entitled (when feature is given). machine
// is reserved for machine-locked licenses and ignored for now.
func (f *FSM) Validate(key, feature, machine string, now int64) (res ValidateResult) {
	f.read(func(s *state) {
		lic, ok := s.licenseForKey(key)
		if !ok {
			return
		}
		pol := s.policies[lic.PolicyID]
		res = ValidateResult{Found: true, License: cloneLicense(lic), Policy: clonePolicy(pol), Seats: s.usage(lic.ID)}
		if r := licenseRefusal(lic, now); r != nil {
			res.Code = r.Refusal.Code
		} else if _, ok := pol.feature(feature); feature != "" && !ok {
			res.Code = CodeFeatureNotEntitled
		}
		res.Valid = res.Code == ""
	})
	return res
}

// sortedValues copies a map's values in key order.
func sortedValues[V any](m map[string]V, clone func(V) V) []V {
	out := make([]V, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, clone(m[k]))
	}
	return out
}

func cloneFeatures(fs []Feature) []Feature {
	if fs == nil {
		return nil
	}
	return append([]Feature{}, fs...)
}

func clonePolicy(p Policy) Policy {
	p.Features = cloneFeatures(p.Features)
	return p
}

func cloneLicense(l License) License {
	if len(l.Metadata) == 0 {
		l.Metadata = nil
	} else {
		l.Metadata = maps.Clone(l.Metadata)
	}
	l.Overrides = cloneOverrides(l.Overrides)
	return l
}

func cloneKey(k SigningKey) SigningKey {
	k.PublicKey = append([]byte(nil), k.PublicKey...)
	return k
}

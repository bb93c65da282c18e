package fsm

import (
	"math"
	"time"

	"github.com/google/btree"
)

// Windows of remembered history, in log time (command Time), not wall time.
const (
	// RequestWindow is how long a checkout's request id is remembered.
	RequestWindow = time.Hour
	// MaxRequestsPerLicense bounds the remembered request ids of one license;
	// the oldest is forgotten first.
	MaxRequestsPerLicense = 10000
	// EndedWindow is how long an ended lease id is remembered, so that a
	// heartbeat can tell "expired" (410) from "never seen" (404).
	EndedWindow = time.Hour
)

const btreeDegree = 32

// liveLease is a lease plus the seat key it was counted under, "" for a
// seat of its own ("l:"+ID, the process rule: most leases, and a key per
// lease would cost a string and a map entry each). Once stored it is never
// mutated (a checkpoint stores a new one), so a snapshot may hold the
// pointer after the lock is released.
type liveLease struct {
	Lease
	seatKey string
}

// storedSeatKey is the seat key a liveLease keeps for key, a seat key as
// a snapshot writes it.
func storedSeatKey(leaseID, key string) string {
	if len(key) == 2+len(leaseID) && key[:2] == "l:" && key[2:] == leaseID {
		return ""
	}
	return key
}

// fullSeatKey is the lease's seat key as seatKey made it.
func (ll *liveLease) fullSeatKey() string {
	if ll.seatKey == "" {
		return "l:" + ll.ID
	}
	return ll.seatKey
}

// seatSlot is one (license, feature) pair whose seats are counted.
type seatSlot struct{ license, feature string }

// seatUse counts the seats in use in one slot: own is leases on a seat of
// their own, shared the live leases on each shared seat key (a machine or
// a user holding several).
type seatUse struct {
	own    int
	shared map[string]int
}

func (u *seatUse) inUse() int {
	if u == nil {
		return 0
	}
	return u.own + len(u.shared)
}

// holds reports whether the stored seat key key already has a seat here.
func (u *seatUse) holds(key string) bool {
	return u != nil && key != "" && u.shared[key] > 0
}

// expiryItem orders live leases by their replicated deadline.
type expiryItem struct {
	ExpiresAt int64
	LeaseID   string
}

func expiryLess(a, b expiryItem) bool {
	if a.ExpiresAt != b.ExpiresAt {
		return a.ExpiresAt < b.ExpiresAt
	}
	return a.LeaseID < b.LeaseID
}

// endedLease remembers a lease that ended, ordered by (EndedAt, LeaseID).
type endedLease struct {
	LeaseID   string `msgpack:"lease"`
	LicenseID string `msgpack:"license"`
	EndedAt   int64  `msgpack:"ended"`
}

func endedLess(a, b endedLease) bool {
	if a.EndedAt != b.EndedAt {
		return a.EndedAt < b.EndedAt
	}
	return a.LeaseID < b.LeaseID
}

// requestEntry remembers which lease a checkout request id produced. Seq is
// a state-wide counter that makes the order total and deterministic.
type requestEntry struct {
	LicenseID string `msgpack:"license"`
	RequestID string `msgpack:"req"`
	LeaseID   string `msgpack:"lease"`
	Time      int64  `msgpack:"time"`
	Seq       uint64 `msgpack:"seq"`
}

func requestLess(a, b *requestEntry) bool {
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	return a.Seq < b.Seq
}

// licenseRequests is one license's exactly-once window. An entry is held
// once and pointed to from the license's map and tree and the state-wide
// tree: at a million remembered requests the copies cost hundreds of MB.
type licenseRequests struct {
	byID  map[string]*requestEntry
	order *btree.BTreeG[*requestEntry]
}

// state is everything Apply changes. It is only reached through FSM's lock.
type state struct {
	products     map[string]Product
	policies     map[string]Policy
	licenses     map[string]License
	licenseByKey map[string]string // key -> license id

	leases          map[string]*liveLease
	leasesByLicense map[string]map[string]struct{}
	seats           map[seatSlot]*seatUse
	expiry          *btree.BTreeG[expiryItem]

	ended      map[string]endedLease
	endedOrder *btree.BTreeG[endedLease]

	requests     map[string]*licenseRequests
	requestOrder *btree.BTreeG[*requestEntry]
	// requestNodes is the node free list every license's request tree
	// shares; one list per tree would cost a list per license.
	requestNodes *btree.FreeListG[*requestEntry]
	requestSeq   uint64

	audit    auditLog
	counters map[string]map[string]FeatureCounters // license -> feature -> usage (usage.go)
	keys     map[string]SigningKey
	names    names  // shared holder strings (names.go)
	keyEpoch uint64 // bumped by RotateKeys; 0 until the first rotation
	applied  uint64

	// restoreTerm is the Raft term of the last operator restore (restore.go).
	restoreTerm uint64
}

func newState() *state {
	return &state{
		products:        map[string]Product{},
		policies:        map[string]Policy{},
		licenses:        map[string]License{},
		licenseByKey:    map[string]string{},
		leases:          map[string]*liveLease{},
		leasesByLicense: map[string]map[string]struct{}{},
		seats:           map[seatSlot]*seatUse{},
		expiry:          btree.NewG(btreeDegree, expiryLess),
		ended:           map[string]endedLease{},
		endedOrder:      btree.NewG(btreeDegree, endedLess),
		requests:        map[string]*licenseRequests{},
		requestOrder:    btree.NewG(btreeDegree, requestLess),
		requestNodes:    btree.NewFreeListG[*requestEntry](btree.DefaultFreeListSize),
		keys:            map[string]SigningKey{},
		counters:        map[string]map[string]FeatureCounters{},
		names:           names{},
	}
}

// tick forgets ended leases and request ids that fell out of their window.
// It runs at the start of every command, driven by the command's Time, so
// every node forgets the same things at the same log position.
func (s *state) tick(now int64) {
	if cutoff, ok := before(now, EndedWindow); ok {
		for {
			e, ok := s.endedOrder.Min()
			if !ok || e.EndedAt >= cutoff {
				break
			}
			s.endedOrder.DeleteMin()
			delete(s.ended, e.LeaseID)
		}
	}
	if cutoff, ok := before(now, RequestWindow); ok {
		for {
			r, ok := s.requestOrder.Min()
			if !ok || r.Time >= cutoff {
				break
			}
			s.forgetRequest(r)
		}
	}
}

// before returns now-d, and false when that would overflow.
func before(now int64, d time.Duration) (int64, bool) {
	if now < math.MinInt64+int64(d) {
		return 0, false
	}
	return now - int64(d), true
}

// seatKey names, in the form a liveLease stores, what a lease occupies
// under a seat rule: a seat of its own ("", written "l:"+id in snapshots:
// process), its machine, or its user (falling back to the machine).
// Prefixes keep keys of different rules apart if the rule changes.
func seatKey(rule string, h Holder) string {
	switch rule {
	case SeatRuleMachine:
		return "m:" + h.Machine
	case SeatRuleUser:
		if h.User == "" {
			return "m:" + h.Machine
		}
		return "u:" + h.User
	default:
		return ""
	}
}

// addLease indexes a new live lease.
func (s *state) addLease(ll *liveLease) {
	s.leases[ll.ID] = ll
	ids := s.leasesByLicense[ll.LicenseID]
	if ids == nil {
		ids = map[string]struct{}{}
		s.leasesByLicense[ll.LicenseID] = ids
	}
	ids[ll.ID] = struct{}{}
	slot := seatSlot{ll.LicenseID, ll.Feature}
	u := s.seats[slot]
	if u == nil {
		u = &seatUse{}
		s.seats[slot] = u
	}
	if ll.seatKey == "" {
		u.own++
	} else {
		if u.shared == nil {
			u.shared = map[string]int{}
		}
		u.shared[ll.seatKey]++
	}
	s.expiry.ReplaceOrInsert(expiryItem{ll.ExpiresAt, ll.ID})
}

// removeLease drops a live lease from every index and remembers it ended.
func (s *state) removeLease(ll *liveLease, now int64) {
	delete(s.leases, ll.ID)
	if ids := s.leasesByLicense[ll.LicenseID]; ids != nil {
		delete(ids, ll.ID)
		if len(ids) == 0 {
			delete(s.leasesByLicense, ll.LicenseID)
		}
	}
	slot := seatSlot{ll.LicenseID, ll.Feature}
	if u := s.seats[slot]; u != nil {
		if ll.seatKey == "" {
			u.own--
		} else if u.shared[ll.seatKey]--; u.shared[ll.seatKey] <= 0 {
			delete(u.shared, ll.seatKey)
		}
		if u.inUse() == 0 {
			delete(s.seats, slot)
		}
	}
	s.expiry.Delete(expiryItem{ll.ExpiresAt, ll.ID})
	s.rememberEnded(endedLease{LeaseID: ll.ID, LicenseID: ll.LicenseID, EndedAt: now})
}

func (s *state) rememberEnded(e endedLease) {
	s.ended[e.LeaseID] = e
	s.endedOrder.ReplaceOrInsert(e)
}

// setDeadline moves a live lease's replicated deadline.
func (s *state) setDeadline(ll *liveLease, expiresAt int64) {
	s.expiry.Delete(expiryItem{ll.ExpiresAt, ll.ID})
	moved := *ll
	moved.ExpiresAt = expiresAt
	s.leases[ll.ID] = &moved
	s.expiry.ReplaceOrInsert(expiryItem{expiresAt, ll.ID})
}

// request finds a remembered checkout request of a license.
func (s *state) request(licenseID, requestID string) (requestEntry, bool) {
	lr := s.requests[licenseID]
	if lr == nil {
		return requestEntry{}, false
	}
	r, ok := lr.byID[requestID]
	if !ok {
		return requestEntry{}, false
	}
	return *r, true
}

// rememberRequest records a request id, forgetting the license's oldest
// when it holds more than MaxRequestsPerLicense.
func (s *state) rememberRequest(r requestEntry) {
	if r.Seq == 0 {
		s.requestSeq++
		r.Seq = s.requestSeq
	}
	lr := s.requests[r.LicenseID]
	if lr == nil {
		lr = &licenseRequests{byID: map[string]*requestEntry{}, order: btree.NewWithFreeListG(8, requestLess, s.requestNodes)}
		s.requests[r.LicenseID] = lr
	}
	if old, ok := lr.byID[r.RequestID]; ok {
		s.forgetRequest(old)
	}
	e := &r
	lr.byID[r.RequestID] = e
	lr.order.ReplaceOrInsert(e)
	s.requestOrder.ReplaceOrInsert(e)
	for len(lr.byID) > MaxRequestsPerLicense {
		oldest, _ := lr.order.Min()
		s.forgetRequest(oldest)
	}
}

func (s *state) forgetRequest(r *requestEntry) {
	s.requestOrder.Delete(r)
	lr := s.requests[r.LicenseID]
	if lr == nil {
		return
	}
	delete(lr.byID, r.RequestID)
	lr.order.Delete(r)
	if len(lr.byID) == 0 {
		delete(s.requests, r.LicenseID)
	}
}

package fsm

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/hashicorp/raft"
)

// TestRandomSequences drives many random command sequences and checks the
// invariants of DESIGN §8 after every Apply: seats never exceed the limit
// (or, after a policy lowered them, no new seat is granted over it), a
// retried request id never takes a second lease, expiry never ends a lease
// before its deadline, the audit chain verifies; and at the end of each
// sequence snapshot/restore and midpoint-restore-and-replay give the same
// hash as the original.
func TestRandomSequences(t *testing.T) {
	const seqs, workers = 2000, 4
	for w := 0; w < workers; w++ {
		t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
			t.Parallel()
			stats := map[string]int{}
			defer func() { t.Logf("outcomes: %v", stats) }()
			for seed := int64(w); seed < seqs; seed += workers {
				runRandomSequence(t, seed, stats)
				if t.Failed() {
					t.Fatalf("seed %d failed", seed)
				}
			}
		})
	}
}

// world is the random test's independent model of what the FSM promised.
type world struct {
	t        *testing.T
	rng      *rand.Rand
	h        *harness
	now      int64
	nextID   int
	seatOf   map[string]string                     // lease id -> seat key it was granted under
	promised map[string]int64                      // lease id -> latest deadline granted or checkpointed
	issued   []string                              // every lease id ever granted
	requests map[string]map[string]reqRec          // license -> request id -> first grant
	lowered  map[string]bool                       // policy or license whose seats were ever lowered
	seatOver map[string]map[string]int             // license -> feature -> seat override
	ttlOver  map[string]int64                      // license -> lease TTL override
	counters map[string]map[string]FeatureCounters // license -> feature -> usage
	keys     map[string]*modelKey                  // signing keys registered
	epoch    uint64                                // the key epoch by the model
	licenses []License
	stats    map[string]int // outcome counts, to see what the run exercised
	last     observation    // the state after the previous step
}

type reqRec struct {
	lease string
	time  int64
}

type modelKey struct {
	epoch   uint64
	retired bool
}

// op is the command one step applied, for check.
type op struct {
	typ        CommandType
	checkout   *Checkout
	checkpoint *CheckpointLeases
	kid        string // RegisterKey, RetireKey
	keyEpoch   uint64 // RegisterKey: the epoch registered
}

func runRandomSequence(t *testing.T, seed int64, stats map[string]int) {
	w := &world{t: t, stats: stats, rng: rand.New(rand.NewSource(seed)), h: newHarness(t), now: t0,
		seatOf: map[string]string{}, promised: map[string]int64{}, requests: map[string]map[string]reqRec{},
		lowered: map[string]bool{}, keys: map[string]*modelKey{}, seatOver: map[string]map[string]int{},
		ttlOver: map[string]int64{}, counters: map[string]map[string]FeatureCounters{}}
	w.provision()
	n := 50 + w.rng.Intn(51) // 50..100 commands
	mid := w.rng.Intn(n)
	var midSnap []byte
	var midLog int
	for i := 0; i < n; i++ {
		if i == mid {
			midSnap, midLog = snapshotBytes(t, w.h.f), len(w.h.log)
		}
		w.step()
		if t.Failed() {
			return
		}
	}
	want := w.h.f.Hash()
	if err := VerifyChain(w.h.f.Audit(0, 0)); err != nil {
		t.Fatalf("seed %d: chain: %v", seed, err)
	}
	restored := restoreBytes(t, snapshotBytes(t, w.h.f))
	if restored.Hash() != want {
		t.Fatalf("seed %d: snapshot/restore changed the hash", seed)
	}
	for _, l := range w.licenses {
		if fmt.Sprint(restored.Usage(l.ID)) != fmt.Sprint(w.h.f.Usage(l.ID)) {
			t.Fatalf("seed %d: usage of %s differs after restore", seed, l.ID)
		}
	}
	replay := restoreBytes(t, midSnap)
	for i := midLog; i < len(w.h.log); i++ {
		replay.Apply(&raft.Log{Index: uint64(i + 1), Data: w.h.log[i]})
	}
	if replay.Hash() != want {
		t.Fatalf("seed %d: restore at entry %d and replay gave a different hash", seed, midLog)
	}
}

func (w *world) provision() {
	h := w.h
	mustOK(w.t, h.apply(CmdCreateProduct, CreateProduct{ID: "p1", Name: "one", Time: w.now}))
	mustOK(w.t, h.apply(CmdCreateProduct, CreateProduct{ID: "p2", Name: "two", Time: w.now}))
	rules := []string{SeatRuleProcess, SeatRuleMachine, SeatRuleUser}
	for i := 0; i < 3; i++ {
		mustOK(w.t, h.apply(CmdCreatePolicy, CreatePolicy{Time: w.now, Policy: Policy{
			ID: fmt.Sprintf("pol%d", i), ProductID: fmt.Sprintf("p%d", 1+i%2), LeaseTTL: int64(30+w.rng.Intn(120)) * sec,
			SeatRule: rules[w.rng.Intn(3)], MaxBorrowHours: int64(w.rng.Intn(3) * 24),
			Features: []Feature{{Name: "cad", Seats: 1 + w.rng.Intn(4)}, {Name: "sim", Seats: 1 + w.rng.Intn(4)},
				{Name: "view", Seats: -1}}}}))
	}
	for i := 0; i < 4; i++ {
		l := License{ID: fmt.Sprintf("lic%d", i), Key: fmt.Sprintf("key%d", i), PolicyID: fmt.Sprintf("pol%d", i%3)}
		if w.rng.Intn(4) == 0 {
			l.ExpiresAt = w.now + int64(w.rng.Intn(180))*min
		}
		w.licenses = append(w.licenses, *mustOK(w.t, h.apply(CmdCreateLicense, CreateLicense{License: l, Time: w.now})).License)
	}
}

func (w *world) pick(options ...string) string { return options[w.rng.Intn(len(options))] }

func (w *world) anyLease() string {
	if len(w.issued) == 0 || w.rng.Intn(10) == 0 {
		return "never-seen"
	}
	return w.issued[w.rng.Intn(len(w.issued))]
}

// step applies one random command and checks the invariants around it.
func (w *world) step() {
	f := w.h.f
	if w.rng.Intn(20) == 0 {
		w.now += int64(w.rng.Intn(30)) * min
	} else {
		w.now += int64(w.rng.Intn(60)) * sec
	}
	before := w.last
	if before.leases == nil {
		before = w.observe()
	}
	headIdx, _ := f.AuditHead()
	lic := w.licenses[w.rng.Intn(len(w.licenses))]
	var res *Result
	var o op
	switch k := w.rng.Intn(100); {
	case k < 42:
		w.nextID++
		c := Checkout{LeaseID: fmt.Sprintf("L%d", w.nextID), LicenseKey: lic.Key, Feature: w.pick("cad", "cad", "sim", "view", "x"),
			Holder:    Holder{Machine: w.pick("m1", "m2", "m3", "m4"), User: w.pick("", "ann", "bob", "cy")},
			RequestID: w.pick("", "", "r1", "r2", "r3", "r4", "r5"), Time: w.now}
		if w.rng.Intn(20) == 0 {
			c.LeaseID = w.anyLease()
		}
		if w.rng.Intn(30) == 0 {
			c.LicenseKey = "bogus"
		}
		if w.rng.Intn(4) == 0 { // a shorter TTL than the policy's
			c.TTL = int64(1+w.rng.Intn(30)) * sec
		}
		if w.rng.Intn(8) == 0 {
			c.BorrowHours = int64(w.rng.Intn(60)) - 2 // sometimes negative, sometimes over the limit
		}
		o.checkout = &c
		res = w.h.apply(CmdCheckout, c)
	case k < 56:
		key := lic.Key
		if l, ok := f.Lease(w.anyLease()); ok && w.rng.Intn(4) > 0 {
			key = w.licenses[l.LicenseID[3]-'0'].Key
		}
		res = w.h.apply(CmdCheckin, Checkin{LeaseID: w.anyLease(), LicenseKey: key, Time: w.now})
	case k < 61:
		res = w.h.apply(CmdRevokeLease, RevokeLease{LeaseID: w.anyLease(), Time: w.now})
	case k < 71:
		ids := []string{w.anyLease()}
		for _, l := range f.ExpiringBefore(w.now, 1+w.rng.Intn(5)) {
			ids = append(ids, l.ID)
		}
		o.typ = CmdExpireLeases
		res = w.h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: ids, Time: w.now})
	case k < 79:
		c := CheckpointLeases{Time: w.now}
		for _, l := range f.Leases(lic.ID) {
			c.Leases = append(c.Leases, LeaseDeadline{LeaseID: l.ID, ExpiresAt: l.ExpiresAt + int64(w.rng.Intn(120)-60)*sec})
		}
		o.checkpoint = &c
		res = w.h.apply(CmdCheckpointLeases, c)
	case k < 86:
		status := w.pick(StatusSuspended, StatusActive, StatusActive)
		if w.rng.Intn(12) == 0 {
			status = StatusRevoked
		}
		res = w.h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: lic.ID, Status: status, Time: w.now})
	case k < 90:
		res = w.updatePolicy(lic)
	case k < 94:
		res = w.updateLicense(lic)
	default:
		o, res = w.keyCommand()
	}
	if o.checkout != nil {
		o.typ = CmdCheckout
	} else if o.checkpoint != nil {
		o.typ = CmdCheckpointLeases
	}
	w.check(before, headIdx, o, res)
}

// updatePolicy changes a license's policy: seats, sometimes the seat rule
// or the borrow limit.
func (w *world) updatePolicy(lic License) *Result {
	pol, _ := w.h.f.Policy(lic.PolicyID)
	feats := append([]Feature(nil), pol.Features...)
	feats[w.rng.Intn(2)].Seats = 1 + w.rng.Intn(4)
	u := UpdatePolicy{ID: pol.ID, Features: &feats, Time: w.now}
	if w.rng.Intn(4) == 0 {
		u.SeatRule = ptr(w.pick(SeatRuleProcess, SeatRuleMachine, SeatRuleUser))
	}
	if w.rng.Intn(6) == 0 {
		u.MaxBorrowHours = ptr(int64(w.rng.Intn(3) * 24))
	}
	for i, ft := range feats {
		if ft.Seats < pol.Features[i].Seats {
			w.lowered[pol.ID] = true
		}
	}
	return w.h.apply(CmdUpdatePolicy, u)
}

// updateLicense sets, changes or clears a license's overrides.
func (w *world) updateLicense(lic License) *Result {
	pol, _ := w.h.f.Policy(lic.PolicyID)
	o := &Overrides{}
	over := map[string]int{}
	if w.rng.Intn(3) > 0 {
		for _, name := range []string{"cad", "sim"} {
			if w.rng.Intn(2) == 0 {
				over[name] = w.rng.Intn(6)
				o.Seats = append(o.Seats, Feature{Name: name, Seats: over[name]})
			}
		}
		if w.rng.Intn(2) == 0 {
			o.LeaseTTL = int64(10+w.rng.Intn(100)) * sec
		}
		if w.rng.Intn(15) == 0 {
			o.Seats = append(o.Seats, Feature{Name: "x", Seats: 1}) // not in the policy: refused
		}
	}
	res := w.h.apply(CmdUpdateLicense, UpdateLicense{ID: lic.ID, Overrides: o, Time: w.now})
	if codeOf(res) != "" {
		return res
	}
	for _, f := range pol.Features {
		if w.seats(lic.ID, pol, f.Name) > seatsOr(over, f) {
			w.lowered[lic.ID] = true
		}
	}
	w.seatOver[lic.ID], w.ttlOver[lic.ID] = over, o.LeaseTTL
	return res
}

// seats is the model's seat count of a feature for a license.
func (w *world) seats(licenseID string, pol Policy, feature string) int {
	for _, f := range pol.Features {
		if f.Name == feature {
			return seatsOr(w.seatOver[licenseID], f)
		}
	}
	return 0
}

func seatsOr(over map[string]int, f Feature) int {
	if n, ok := over[f.Name]; ok {
		return n
	}
	return f.Seats
}

// keyCommand registers, rotates or retires a signing key.
func (w *world) keyCommand() (op, *Result) {
	kid := w.pick("ka", "kb", "kc", "kd")
	switch w.rng.Intn(3) {
	case 0:
		// Up to one epoch ahead, as a node that outlived a restore does.
		epoch := uint64(w.rng.Int63n(int64(w.epoch) + 2))
		return op{typ: CmdRegisterKey, kid: kid, keyEpoch: epoch}, w.h.apply(CmdRegisterKey,
			RegisterKey{Key: SigningKey{KID: kid, PublicKey: pubKey(kid[1]), NodeID: "n" + kid, Epoch: epoch}, Time: w.now})
	case 1:
		return op{typ: CmdRotateKeys}, w.h.apply(CmdRotateKeys, RotateKeys{Time: w.now})
	}
	return op{typ: CmdRetireKey, kid: kid}, w.h.apply(CmdRetireKey, RetireKey{KID: kid, Time: w.now})
}

// observation is what the test sees of the FSM around one Apply.
type observation struct {
	leases map[string]Lease
	seats  map[string]map[string]bool // "license/feature" -> seat keys in use
}

func (w *world) observe() observation {
	o := observation{leases: map[string]Lease{}, seats: map[string]map[string]bool{}}
	for _, l := range w.h.f.Leases("") {
		o.leases[l.ID] = l
		slot := l.LicenseID + "/" + l.Feature
		if o.seats[slot] == nil {
			o.seats[slot] = map[string]bool{}
		}
		o.seats[slot][w.seatOf[l.ID]] = true
	}
	return o
}

// modelSeatKey is the test's own statement of the seat rules.
func modelSeatKey(rule string, l Lease) string {
	switch {
	case rule == SeatRuleMachine || (rule == SeatRuleUser && l.Holder.User == ""):
		return "machine " + l.Holder.Machine
	case rule == SeatRuleUser:
		return "user " + l.Holder.User
	}
	return "lease " + l.ID
}

package fsm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
)

// Snapshot format v1: the 9 bytes "TALLYSNAP", one version byte, then a
// msgpack stream of sections in a fixed order. Each section is its name
// (a string), an array header and its items, sorted so that the same state
// always gives the same bytes; Hash is sha256 of exactly these bytes.
const (
	snapshotMagic   = "TALLYSNAP"
	snapshotVersion = 1
)

// ErrSnapshotVersion is returned by Restore for a snapshot this build
// cannot read.
var ErrSnapshotVersion = errors.New("fsm: unsupported snapshot version")

// Section names, in stream order.
const (
	secProducts = "products"
	secPolicies = "policies"
	secLicenses = "licenses"
	secLeases   = "leases"
	secRequests = "requests"
	secEnded    = "ended"
	secAudit    = "audit"
	secKeys     = "keys"
	secUsage    = "usage" // optional: only when there are usage counters
	secMeta     = "meta"
)

// snapLease is a lease with the seat key it was counted under, which the
// current policy's rule cannot recompute if the rule changed since.
type snapLease struct {
	Lease   Lease  `msgpack:"lease"`
	SeatKey string `msgpack:"seat"`
}

type snapMeta struct {
	Applied    uint64 `msgpack:"applied"`
	RequestSeq uint64 `msgpack:"req_seq"`
	// KeyEpoch is omitempty so that a state never rotated encodes as v1 did.
	KeyEpoch uint64 `msgpack:"key_epoch,omitempty"`
	// RestoreTerm is omitempty for the same reason (see restore.go).
	RestoreTerm uint64 `msgpack:"restore_term,omitempty"`
}

// capture is a point-in-time copy of the state. Taking it copies values
// and pointers to immutable leases under the read lock; sorting and
// encoding happen after the lock is released.
type capture struct {
	products []Product
	policies []Policy
	licenses []License
	leases   []*liveLease
	requests []requestEntry
	ended    []endedLease
	audit    auditView
	keys     []SigningKey
	counters []snapCounters
	meta     snapMeta
}

func (f *FSM) capture() *capture {
	c := &capture{}
	f.read(func(s *state) {
		c.products = mapValues(s.products)
		c.policies = mapValues(s.policies)
		c.licenses = mapValues(s.licenses)
		c.leases = mapValues(s.leases)
		c.keys = mapValues(s.keys)
		c.counters = captureCounters(s.counters)
		c.requests = make([]requestEntry, 0, s.requestOrder.Len())
		s.requestOrder.Ascend(func(r *requestEntry) bool { c.requests = append(c.requests, *r); return true })
		c.ended = make([]endedLease, 0, s.endedOrder.Len())
		s.endedOrder.Ascend(func(e endedLease) bool { c.ended = append(c.ended, e); return true })
		// The log is append-only: the view shares every record with it.
		c.audit = s.audit.view()
		c.meta = snapMeta{Applied: s.applied, RequestSeq: s.requestSeq, KeyEpoch: s.keyEpoch, RestoreTerm: s.restoreTerm}
	})
	return c
}

func mapValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// write streams the canonical encoding of the capture to w.
func (c *capture) write(w io.Writer) error {
	sort.Slice(c.products, func(i, j int) bool { return c.products[i].ID < c.products[j].ID })
	sort.Slice(c.policies, func(i, j int) bool { return c.policies[i].ID < c.policies[j].ID })
	sort.Slice(c.licenses, func(i, j int) bool { return c.licenses[i].ID < c.licenses[j].ID })
	sort.Slice(c.leases, func(i, j int) bool { return c.leases[i].ID < c.leases[j].ID })
	sort.Slice(c.keys, func(i, j int) bool { return c.keys[i].KID < c.keys[j].KID })
	sortCounters(c.counters)

	if _, err := io.WriteString(w, snapshotMagic); err != nil {
		return err
	}
	if _, err := w.Write([]byte{snapshotVersion}); err != nil {
		return err
	}
	enc := msgpack.NewEncoder(w)
	enc.SetSortMapKeys(true)
	err := writeSection(enc, secProducts, c.products, nil)
	if err == nil {
		err = writeSection(enc, secPolicies, c.policies, nil)
	}
	if err == nil {
		err = writeSection(enc, secLicenses, c.licenses, nil)
	}
	if err == nil {
		err = writeSection(enc, secLeases, c.leases, func(ll *liveLease) any {
			return &snapLease{Lease: ll.Lease, SeatKey: ll.fullSeatKey()}
		})
	}
	if err == nil {
		err = writeSection(enc, secRequests, c.requests, nil)
	}
	if err == nil {
		err = writeSection(enc, secEnded, c.ended, nil)
	}
	if err == nil {
		err = writeAuditSection(enc, &c.audit)
	}
	if err == nil {
		err = writeSection(enc, secKeys, c.keys, nil)
	}
	// Written only when there are counters, so that a state without any
	// encodes and hashes exactly as before the section existed. It sits
	// before meta, which stays last (CheckUpload replaces it in place).
	if err == nil && len(c.counters) > 0 {
		err = writeSection(enc, secUsage, c.counters, nil)
	}
	if err == nil {
		err = writeSection(enc, secMeta, []snapMeta{c.meta}, nil)
	}
	return err
}

// writeSection writes name, an array header and the items (through conv
// when it is not nil).
func writeSection[T any](enc *msgpack.Encoder, name string, items []T, conv func(T) any) error {
	if err := enc.EncodeString(name); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(len(items)); err != nil {
		return err
	}
	for i := range items {
		var v any = &items[i]
		if conv != nil {
			v = conv(items[i])
		}
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("fsm: snapshot section %s: %w", name, err)
		}
	}
	return nil
}

// Snapshot captures the state under the read lock; Persist streams it.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{c: f.capture()}, nil
}

type snapshot struct{ c *capture }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	bw := bufio.NewWriterSize(sink, 64<<10)
	err := s.c.write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// Hash is the hex sha256 of the snapshot encoding of the whole state: two
// nodes that applied the same log have the same hash.
func (f *FSM) Hash() string {
	h := sha256.New()
	bw := bufio.NewWriterSize(h, 64<<10)
	if err := f.capture().write(bw); err != nil {
		// Writing to a hash cannot fail; an encoding failure is a bug.
		panic(fmt.Sprintf("fsm: hash: %v", err))
	}
	if err := bw.Flush(); err != nil {
		panic(fmt.Sprintf("fsm: hash: %v", err))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ErrSnapshotBehind is returned by Restore for a snapshot that would move
// the state backwards.
var ErrSnapshotBehind = errors.New("fsm: snapshot is older than the applied state")

// Restore replaces all state with a snapshot. The new state is built aside,
// with every index, and swapped in under one lock; on error nothing changes.
//
// A snapshot older than what is already applied is refused
// (ErrSnapshotBehind). hashicorp/raft v1.7.3 keeps a removed peer's
// replication goroutine alive for a last attempt; when the peer is re-added
// at once, that goroutine can install its stale snapshot on the new
// incarnation after it has caught up. Raft would then rewind its applied
// index below entries the follower has already compacted and panic with
// "log not found". Refusing fails only that stale attempt; the live
// replication never sends a snapshot behind the follower. Comparing command
// indexes can miss a rewind across entries that carry no command (no-ops,
// configuration changes), never refuse a legitimate install. An operator
// restore counts as newer than any state before it (see restore.go).
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := readState(bufio.NewReaderSize(rc, 64<<10))
	if err != nil {
		return err
	}
	f.mu.Lock()
	if behind(s, f.st) {
		have, haveTerm := f.st.applied, f.st.restoreTerm
		f.mu.Unlock()
		return fmt.Errorf("%w: snapshot at index %d (restored in term %d), applied %d (restored in term %d)",
			ErrSnapshotBehind, s.applied, s.restoreTerm, have, haveTerm)
	}
	keepOldState(f.st, s)
	f.st = s
	f.mu.Unlock()
	return nil
}

func readState(br *bufio.Reader) (*state, error) {
	hdr := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("fsm: snapshot header: %w", err)
	}
	if !bytes.Equal(hdr[:len(snapshotMagic)], []byte(snapshotMagic)) {
		return nil, errors.New("fsm: not a Tally snapshot")
	}
	if v := hdr[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("%w: %d", ErrSnapshotVersion, v)
	}
	dec := msgpack.NewDecoder(br)
	s := newState()
	err := readSection(dec, secProducts, func(p Product) { s.products[p.ID] = p })
	if err == nil {
		err = readSection(dec, secPolicies, func(p Policy) { s.policies[p.ID] = p })
	}
	if err == nil {
		err = readSizedSection(dec, secLicenses, func(n int) {
			s.licenses, s.licenseByKey = make(map[string]License, n), make(map[string]string, n)
		}, func(l License) {
			s.licenses[l.ID] = l
			s.licenseByKey[l.Key] = l.ID
		})
	}
	if err == nil {
		err = readSizedSection(dec, secLeases, func(n int) { s.leases = make(map[string]*liveLease, n) }, func(sl snapLease) {
			s.addLease(&liveLease{Lease: s.restoredLease(sl.Lease), seatKey: storedSeatKey(sl.Lease.ID, sl.SeatKey)})
		})
	}
	if err == nil {
		err = readSection(dec, secRequests, func(r requestEntry) { s.rememberRequest(s.restoredRequest(r)) })
	}
	if err == nil {
		err = readSection(dec, secEnded, func(e endedLease) { s.rememberEnded(s.restoredEnded(e)) })
	}
	if err == nil {
		var rd auditReader
		err = readItems(dec, secAudit, nil, func() error { return s.audit.restore(dec, &rd) })
	}
	if err == nil {
		err = readSection(dec, secKeys, func(k SigningKey) { s.keys[k.KID] = k })
	}
	// The optional usage section, then meta.
	var next string
	if err == nil {
		next, err = sectionName(dec, secMeta)
	}
	if err == nil && next == secUsage {
		err = readNamedItems(dec, secUsage, nil, func() error {
			var sc snapCounters
			if err := dec.Decode(&sc); err != nil {
				return err
			}
			s.restoreCounters(sc)
			return nil
		})
		if err == nil {
			next, err = sectionName(dec, secMeta)
		}
	}
	if err == nil && next != secMeta {
		err = fmt.Errorf("fsm: snapshot has section %q where %q belongs", next, secMeta)
	}
	if err == nil {
		err = readNamedItems(dec, secMeta, nil, func() error {
			var m snapMeta
			if err := dec.Decode(&m); err != nil {
				return err
			}
			s.applied, s.requestSeq, s.keyEpoch, s.restoreTerm = m.Applied, m.RequestSeq, m.KeyEpoch, m.RestoreTerm
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// readSection checks the section name and hands each decoded item to add.
func readSection[T any](dec *msgpack.Decoder, name string, add func(T)) error {
	return readSizedSection(dec, name, nil, add)
}

// maxPresize bounds what a section's declared length may preallocate.
const maxPresize = 1 << 22

// readSizedSection is readSection that first tells sized how many items
// follow, so a large state is allocated once rather than grown item by
// item.
func readSizedSection[T any](dec *msgpack.Decoder, name string, sized func(n int), add func(T)) error {
	return readItems(dec, name, sized, func() error {
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		add(v)
		return nil
	})
}

// readItems checks the section name, tells sized (when not nil) how many
// items follow and calls item to read each one.
func readItems(dec *msgpack.Decoder, name string, sized func(n int), item func() error) error {
	got, err := sectionName(dec, name)
	if err != nil {
		return err
	}
	if got != name {
		return fmt.Errorf("fsm: snapshot has section %q where %q belongs", got, name)
	}
	return readNamedItems(dec, name, sized, item)
}

// sectionName reads the name of the next section, where want belongs.
func sectionName(dec *msgpack.Decoder, want string) (string, error) {
	got, err := dec.DecodeString()
	if err != nil {
		return "", fmt.Errorf("fsm: snapshot section %s: %w", want, err)
	}
	return got, nil
}

// readNamedItems is readItems once the section's name has been read.
func readNamedItems(dec *msgpack.Decoder, name string, sized func(n int), item func() error) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return fmt.Errorf("fsm: snapshot section %s: %w", name, err)
	}
	if sized != nil && n > 0 {
		// A corrupt length must not allocate the machine away; past the
		// cap, the collection grows as items actually arrive.
		size := n
		if size > maxPresize {
			size = maxPresize
		}
		sized(size)
	}
	for i := 0; i < n; i++ {
		if err := item(); err != nil {
			return fmt.Errorf("fsm: snapshot section %s item %d: %w", name, i, err)
		}
	}
	return nil
}

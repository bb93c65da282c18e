package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// auditEvents returns n varied records as Apply would pass them to
// appendAudit: repeated types, licenses and features, holders or none,
// and details whose lengths cross every msgpack string header size.
func auditEvents(n int) []AuditRecord {
	types := []string{AuditLeaseCheckout, AuditLeaseCheckin, AuditLicenseCreated, AuditLeaseDenied}
	details := []string{"", "seats=2", strings.Repeat("d", 31), strings.Repeat("e", 32),
		strings.Repeat("f", 255), strings.Repeat("g", 256), strings.Repeat("h", 1<<16), "ünïcode"}
	out := make([]AuditRecord, n)
	for i := range out {
		r := AuditRecord{Time: t0 + int64(i)*sec, Type: types[i%len(types)],
			LicenseID: fmt.Sprintf("lic%d", i%7), Feature: []string{"", "cad", "view"}[i%3],
			LeaseID: fmt.Sprintf("lease-%d", i), Detail: details[i%len(details)]}
		if i%3 != 2 {
			r.Holder = &Holder{Machine: fmt.Sprintf("m%d", i), User: "u", Process: strings.Repeat("p", i%40)}
		}
		out[i] = r
	}
	return out
}

// referenceChain links records the way the slice of AuditRecords did
// before the compact log: each with its Index, PrevHash and hex Hash.
func referenceChain(t *testing.T, events []AuditRecord) []AuditRecord {
	t.Helper()
	out := make([]AuditRecord, len(events))
	for i, r := range events {
		r.Index = uint64(i) + 1
		r.PrevHash = ""
		if i > 0 {
			r.PrevHash = out[i-1].Hash
		}
		r.Hash = ""
		h, err := recordHash(&r)
		if err != nil {
			t.Fatal(err)
		}
		r.Hash = h
		out[i] = r
	}
	return out
}

// smallLog is a state whose audit log has tiny chunks and intern table,
// so that a few records cross every boundary.
func smallLog() *state {
	s := newState()
	s.audit.chunkRecs, s.audit.chunkBytes, s.audit.maxStrings = 3, 400, 6
	return s
}

func appendAll(s *state, events []AuditRecord) {
	for _, r := range events {
		s.appendAudit(r.Time, r)
	}
}

func TestAuditLogAppendAcrossChunks(t *testing.T) {
	events := auditEvents(40)
	want := referenceChain(t, events)
	s := smallLog()
	appendAll(s, events)

	if got := s.audit.records(0, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("records differ from the reference chain:\n%+v\n%+v", got[:2], want[:2])
	}
	if err := VerifyChain(s.audit.records(0, 0)); err != nil {
		t.Fatal(err)
	}
	// Both bounds sealed chunks: some hold 3 records, the long details
	// forced some to hold fewer; none is empty and they are contiguous.
	full, short := 0, 0
	next := uint64(0)
	for _, c := range s.audit.chunks {
		if c.first != next || len(c.recs) == 0 || len(c.recs) > 3 {
			t.Fatalf("chunk at %d holds %d records, want it at %d with 1-3", c.first, len(c.recs), next)
		}
		if len(c.recs) == 3 {
			full++
		} else {
			short++
		}
		next += uint64(len(c.recs))
	}
	if next != 40 || full == 0 || short < 2 {
		t.Fatalf("%d records in %d full and %d short chunks", next, full, short)
	}
	// The table took its 6 strings; the rest were stored inline and read
	// back the same (checked above).
	if len(s.audit.strs) != 6 {
		t.Fatalf("intern table holds %d strings, want 6", len(s.audit.strs))
	}
	if h, ok := s.audit.lastHash(); !ok || fmt.Sprintf("%x", h) != want[39].Hash {
		t.Fatalf("head hash %x, want %s", h, want[39].Hash)
	}
}

func TestAuditLogPaging(t *testing.T) {
	events := auditEvents(25)
	want := referenceChain(t, events)
	s := smallLog()
	appendAll(s, events)
	for after := 0; after <= 27; after++ {
		for limit := 0; limit <= 27; limit++ {
			got := s.audit.records(uint64(after), limit)
			var exp []AuditRecord
			if after < len(want) {
				exp = want[after:]
				if limit > 0 && limit < len(exp) {
					exp = exp[:limit]
				}
			}
			if len(got) != len(exp) || (len(exp) > 0 && !reflect.DeepEqual(got, exp)) {
				t.Fatalf("records(%d, %d): %d records, want %d", after, limit, len(got), len(exp))
			}
		}
	}
}

// TestAuditLogViewIsolation: a view taken before more appends still reads
// exactly what it held, after the tail chunk, its arena and the intern
// table have all grown or been replaced.
func TestAuditLogViewIsolation(t *testing.T) {
	events := auditEvents(60)
	want := referenceChain(t, events)
	s := smallLog()
	s.audit.maxStrings = 0
	appendAll(s, events[:4]) // the tail chunk is part full
	v := s.audit.view()
	var before bytes.Buffer
	writeAuditView(t, &before, &v)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the race detector checks appends against this reader
		defer wg.Done()
		for i := 0; i < 20; i++ {
			var again bytes.Buffer
			writeAuditView(t, &again, &v)
			if !bytes.Equal(again.Bytes(), before.Bytes()) {
				t.Error("the view's snapshot bytes changed while appending")
				return
			}
		}
	}()
	for _, r := range events[4:] {
		s.appendAudit(r.Time, r)
	}
	wg.Wait()
	if got := v.records(0, 0); !reflect.DeepEqual(got, want[:4]) {
		t.Fatalf("view reads %d records, want the first 4", len(got))
	}
	if got := s.audit.records(0, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("log reads %d records, want 60", len(got))
	}
}

func writeAuditView(t *testing.T, w *bytes.Buffer, v *auditView) {
	enc := msgpack.NewEncoder(w)
	if err := writeAuditSection(enc, v); err != nil {
		t.Error(err)
	}
}

// TestAuditSnapshotEncoding: the log writes each record exactly as
// msgpack's reflection encoding of AuditRecord did, which is what every
// snapshot written so far holds.
func TestAuditSnapshotEncoding(t *testing.T) {
	events := auditEvents(40)
	want := referenceChain(t, events)
	s := smallLog()
	appendAll(s, events)

	var exp bytes.Buffer
	enc := msgpack.NewEncoder(&exp)
	enc.SetSortMapKeys(true) // as the snapshot writer's encoder
	if err := enc.EncodeString(secAudit); err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeArrayLen(len(want)); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if err := enc.Encode(&want[i]); err != nil {
			t.Fatal(err)
		}
	}
	var got bytes.Buffer
	v := s.audit.view()
	writeAuditView(t, &got, &v)
	if !bytes.Equal(got.Bytes(), exp.Bytes()) {
		t.Fatalf("audit section differs from the reflection encoding (%d vs %d bytes)", got.Len(), exp.Len())
	}
}

// TestAuditRestoreRoundTrip: records read back from a snapshot's audit
// section rebuild the same log, and a chain that does not link is refused.
// (TestGoldenSnapshot and TestSnapshotWhileApplying restore whole states.)
func TestAuditRestoreRoundTrip(t *testing.T) {
	events := auditEvents(30)
	want := referenceChain(t, events)
	for _, tc := range []struct {
		name   string
		damage func(r []AuditRecord)
		ok     bool
	}{
		{name: "intact", damage: func([]AuditRecord) {}, ok: true},
		{name: "gap", damage: func(r []AuditRecord) { r[5].Index++ }},
		{name: "not from 1", damage: func(r []AuditRecord) { r[0].Index = 2 }},
		{name: "prev link", damage: func(r []AuditRecord) { r[9].PrevHash = r[3].Hash }},
		{name: "first has prev", damage: func(r []AuditRecord) { r[0].PrevHash = r[1].Hash }},
		{name: "upper case hash", damage: func(r []AuditRecord) { r[12].Hash = strings.ToUpper(r[12].Hash) }},
		{name: "short hash", damage: func(r []AuditRecord) { r[29].Hash = r[29].Hash[:10] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := append([]AuditRecord(nil), want...)
			tc.damage(recs)
			// Encoded as v1 snapshots hold them, decoded as Restore does.
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			for i := range recs {
				if err := enc.Encode(&recs[i]); err != nil {
					t.Fatal(err)
				}
			}
			dec := msgpack.NewDecoder(&buf)
			var rd auditReader
			s := smallLog()
			var err error
			for range recs {
				if err = s.audit.restore(dec, &rd); err != nil {
					break
				}
			}
			if !tc.ok {
				if !errors.Is(err, errAuditLink) {
					t.Fatalf("restore of a damaged chain: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.audit.records(0, 0); !reflect.DeepEqual(got, want) {
				t.Fatalf("restored log reads differently")
			}
			// Appending after a restore continues the same chain.
			more := auditEvents(33)[30:]
			appendAll(s, more)
			if got, exp := s.audit.records(0, 0), referenceChain(t, append(events, more...)); !reflect.DeepEqual(got, exp) {
				t.Fatalf("appends after restore do not continue the chain")
			}
		})
	}
}

// TestSnapshotWhileApplying persists a snapshot in another goroutine while
// Apply appends audit records (run with -race), and checks it holds the
// state as it was when taken.
func TestSnapshotWhileApplying(t *testing.T) {
	h := newHarness(t)
	h.seed()
	mustOK(t, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", Features: &[]Feature{{Name: "cad", Seats: -1}}}))
	for i := 0; i < 50; i++ {
		mustOK(t, h.checkout(fmt.Sprintf("a%d", i), fmt.Sprintf("m%d", i), "", t0+int64(i)))
	}
	want := snapshotBytes(t, h.f)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	done := make(chan error, 1)
	go func() { done <- snap.Persist(&sink) }()
	for i := 50; i < 5000; i++ {
		mustOK(t, h.checkout(fmt.Sprintf("a%d", i), fmt.Sprintf("m%d", i), "", t0+int64(i)))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), want) {
		t.Fatalf("a snapshot persisted during appends differs from one taken at the same point")
	}
	f := restoreBytes(t, snapshotBytes(t, h.f))
	if got := f.Audit(0, 0); len(got) != 5004 || VerifyChain(got) != nil {
		t.Fatalf("restored %d records", len(got))
	}
	wantIdx, wantHash := h.f.AuditHead()
	if idx, hash := f.AuditHead(); idx != wantIdx || hash != wantHash {
		t.Fatalf("restored head %d %s, want %d %s", idx, hash, wantIdx, wantHash)
	}
}

// TestAuditReaderFieldOrder: the record decoder reads what the reflection
// decoder did, whatever the order of the fields, skipping unknown ones.
func TestAuditReaderFieldOrder(t *testing.T) {
	want := referenceChain(t, auditEvents(12))
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true) // alphabetical: not the struct's order
	for _, r := range want {
		m := map[string]any{"i": r.Index, "t": r.Time, "ty": r.Type, "lic": r.LicenseID,
			"lease": r.LeaseID, "f": r.Feature, "h": nil, "d": r.Detail, "prev": r.PrevHash,
			"hash": r.Hash, "zz-later-field": []int{1, 2}}
		if h := r.Holder; h != nil {
			m["h"] = map[string]any{"p": h.Process, "h": h.Hostname, "u": h.User, "m": h.Machine, "x": 7}
		}
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
	}
	dec := msgpack.NewDecoder(&buf)
	var rd auditReader
	s := smallLog()
	for range want {
		if err := s.audit.restore(dec, &rd); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.audit.records(0, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded records differ:\n%+v\n%+v", got[0], want[0])
	}
}

// TestCanonicalRecordEncoding: the hand-written canonical form is what
// msgpack's Encoder writes for the same values, at every integer and
// string length boundary, so record hashes are the ones v1 computed.
func TestCanonicalRecordEncoding(t *testing.T) {
	uints := []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1}
	ints := []int64{0, 1, 127, 128, 1 << 40, t0, -1, -32, -33, -128, -129, -32768, -32769,
		-1 << 31, -1<<31 - 1, -1 << 63, 1<<63 - 1}
	events := auditEvents(16)
	for i, ev := range events {
		f := fieldsOf(&ev)
		for j, idx := range uints {
			f.time = ints[(i+j)%len(ints)]
			prev := []string{"", strings.Repeat("ab", 32), "x"}[(i+j)%3]
			var want bytes.Buffer
			enc := msgpack.NewEncoder(&want)
			must := func(err error) {
				if err != nil {
					t.Fatal(err)
				}
			}
			must(enc.EncodeArrayLen(9))
			must(enc.EncodeUint(idx))
			must(enc.EncodeInt(f.time))
			for _, s := range []string{f.typ, f.license, f.lease, f.feature} {
				must(enc.EncodeString(s))
			}
			if f.hasHolder {
				must(enc.EncodeArrayLen(4))
				for _, s := range f.holder {
					must(enc.EncodeString(s))
				}
			} else {
				must(enc.EncodeNil())
			}
			must(enc.EncodeString(f.detail))
			must(enc.EncodeString(prev))
			if got := appendCanonicalRecord(nil, idx, &f, prev); !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("record %d, index %d, time %d: canonical form differs from the Encoder's", i, idx, f.time)
			}
		}
	}
}

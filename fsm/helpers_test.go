package fsm

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// t0 is the log time the fixtures start at.
const t0 = int64(1_800_000_000) * int64(time.Second)

const (
	sec = int64(time.Second)
	min = int64(time.Minute)
)

// harness feeds encoded commands to an FSM and keeps the log it wrote.
type harness struct {
	tb  testing.TB
	f   *FSM
	idx uint64
	log [][]byte
	// versions, when set, pins command types to an older body version, to
	// write the entries an older release wrote.
	versions map[CommandType]byte
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	return &harness{tb: tb, f: New()}
}

func (h *harness) apply(t CommandType, body any) *Result {
	h.tb.Helper()
	v, pinned := h.versions[t]
	if !pinned {
		v = currentVersion(t)
	}
	data, err := encodeVersion(t, v, body)
	if err != nil {
		h.tb.Fatalf("encode: %v", err)
	}
	return h.applyRaw(data)
}

func (h *harness) applyRaw(data []byte) *Result {
	h.tb.Helper()
	h.idx++
	h.log = append(h.log, data)
	out := h.f.Apply(&raft.Log{Index: h.idx, Data: data})
	if out == nil {
		return nil
	}
	r, ok := out.(*Result)
	if !ok || r == nil {
		h.tb.Fatalf("Apply returned %T %v, want *Result", out, out)
	}
	return r
}

// mustOK fails unless r is a success.
func mustOK(tb testing.TB, r *Result) *Result {
	tb.Helper()
	if r == nil || r.Refusal != nil {
		tb.Fatalf("want success, got %+v", refusalOf(r))
	}
	return r
}

func refusalOf(r *Result) any {
	if r == nil || r.Refusal == nil {
		return nil
	}
	return *r.Refusal
}

func codeOf(r *Result) string {
	if r == nil || r.Refusal == nil {
		return ""
	}
	return r.Refusal.Code
}

// seed provisions product p1; policy pol1 (cad: 2 seats, view: uncounted,
// ttl 60 s, process rule); license lic1 with key key-1 on it.
func (h *harness) seed() {
	h.tb.Helper()
	mustOK(h.tb, h.apply(CmdCreateProduct, CreateProduct{ID: "p1", Name: "CAD Suite", Time: t0}))
	mustOK(h.tb, h.apply(CmdCreatePolicy, CreatePolicy{Time: t0, Policy: Policy{
		ID: "pol1", ProductID: "p1", Name: "standard", LeaseTTL: 60 * sec,
		Features: []Feature{{Name: "cad", Seats: 2}, {Name: "view", Seats: -1}},
	}}))
	mustOK(h.tb, h.apply(CmdCreateLicense, CreateLicense{Time: t0,
		License: License{ID: "lic1", Key: "key-1", PolicyID: "pol1", Customer: "acme"}}))
}

// checkout takes a cad seat on key-1 for machine m at time t.
func (h *harness) checkout(lease, machine, req string, t int64) *Result {
	h.tb.Helper()
	return h.apply(CmdCheckout, Checkout{LeaseID: lease, LicenseKey: "key-1", Feature: "cad",
		Holder: Holder{Machine: machine, User: "u-" + machine}, RequestID: req, Time: t})
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func snapshotBytes(tb testing.TB, f *FSM) []byte {
	tb.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		tb.Fatalf("snapshot: %v", err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		tb.Fatalf("persist: %v", err)
	}
	snap.Release()
	return sink.Bytes()
}

func restoreBytes(tb testing.TB, data []byte) *FSM {
	tb.Helper()
	f := New()
	if err := f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		tb.Fatalf("restore: %v", err)
	}
	return f
}

// auditTypes lists the types of records after index.
func auditTypes(f *FSM, after uint64) []string {
	var out []string
	for _, r := range f.Audit(after, 0) {
		out = append(out, r.Type)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

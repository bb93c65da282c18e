package fsm

import (
	"bytes"
	"encoding/binary"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// Golden files, one pair (snapshot with its hash, and the log that built
// it) per generation of the state machine, named by generation: v1 is the
// first release; v2 added Checkout body version 2 (every refusal audited),
// key rotation and borrowing to the history; v3 Checkout version 3 (usage
// counters), UpdateLicense, license overrides and policy durations; v4
// Checkout version 4 (leases capped at the license's expiry). Each must
// keep loading, and its log keep replaying to its hash, whatever the code
// becomes: that is the point of keeping them. -update writes the files of a generation
// that has none; it never overwrites one (delete a pair on purpose to
// regenerate it, which is only right before it was ever released).
var update = flag.Bool("update", false, "write missing testdata golden files")

type golden struct {
	name    string // file suffix: snapshot-NAME.bin, snapshot-NAME.hash, log-NAME.bin
	history func(h *harness)
	check   func(t *testing.T, f *FSM)
}

var goldens = []golden{
	{"v1", goldenHistory, checkGoldenState},
	{"v2", goldenHistoryV2, checkGoldenStateV2},
	{"v3", goldenHistoryV3, checkGoldenStateV3},
	{"v4", goldenHistoryV4, checkGoldenStateV4},
}

func (g golden) path(kind string) string {
	ext := ".bin"
	if kind == "hash" {
		kind, ext = "snapshot", ".hash"
	}
	return filepath.Join("testdata", kind+"-"+g.name+ext)
}

// goldenHistory is the v1 history, as the first release wrote it (Checkout
// at body version 1). It has no borrow, key rotation or retirement:
// goldenHistoryV2 covers every command.
func goldenHistory(h *harness) {
	h.versions = map[CommandType]byte{CmdCheckout: 1}
	h.seed()
	m := func(i int) Holder {
		return Holder{Machine: "m" + string(rune('0'+i)), User: "u", Hostname: "h", Process: "cad.exe"}
	}
	mustOK(h.tb, h.apply(CmdRegisterKey, RegisterKey{Key: SigningKey{KID: "n1-1", PublicKey: bytes.Repeat([]byte{7}, 32)}, Time: t0}))
	mustOK(h.tb, h.apply(CmdCreateLicense, CreateLicense{Time: t0, License: License{ID: "lic2", Key: "key-2",
		PolicyID: "pol1", Customer: "globex", ExpiresAt: t0 + 24*60*min, Metadata: map[string]string{"b": "2", "a": "1"}}}))
	mustOK(h.tb, h.apply(CmdCheckout, co("l1", "cad", m(1), "req-1", t0+sec)))
	mustOK(h.tb, h.apply(CmdCheckout, co("l1-retry", "cad", m(1), "req-1", t0+2*sec)))
	mustOK(h.tb, h.apply(CmdCheckout, co("l2", "cad", m(2), "req-2", t0+3*sec)))
	h.apply(CmdCheckout, co("l3", "cad", m(3), "req-3", t0+4*sec)) // no seats
	mustOK(h.tb, h.apply(CmdCheckout, co("l4", "view", m(4), "", t0+5*sec)))
	mustOK(h.tb, h.apply(CmdCheckin, Checkin{LeaseID: "l2", LicenseKey: "key-1", Time: t0 + 6*sec}))
	mustOK(h.tb, h.apply(CmdCheckpointLeases, CheckpointLeases{Time: t0 + 30*sec,
		Leases: []LeaseDeadline{{LeaseID: "l1", ExpiresAt: t0 + 300*sec}}}))
	mustOK(h.tb, h.apply(CmdExpireLeases, ExpireLeases{LeaseIDs: []string{"l1", "l4"}, Time: t0 + 70*sec}))
	mustOK(h.tb, h.apply(CmdUpdatePolicy, UpdatePolicy{ID: "pol1", SeatRule: ptr(SeatRuleMachine),
		Features: &[]Feature{{Name: "cad", Seats: 1}, {Name: "view", Seats: -1}}, Time: t0 + 80*sec}))
	mustOK(h.tb, h.apply(CmdCheckout, Checkout{LeaseID: "l5", LicenseKey: "key-2", Feature: "cad",
		Holder: m(5), RequestID: "req-5", TTL: 600 * sec, Time: t0 + 90*sec}))
	mustOK(h.tb, h.apply(CmdCheckout, Checkout{LeaseID: "l6", LicenseKey: "key-2", Feature: "cad",
		Holder: m(5), Time: t0 + 91*sec}))
	mustOK(h.tb, h.apply(CmdRevokeLease, RevokeLease{LeaseID: "l6", Time: t0 + 92*sec}))
	mustOK(h.tb, h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusSuspended, Time: t0 + 100*sec}))
	mustOK(h.tb, h.apply(CmdSetLicenseStatus, SetLicenseStatus{ID: "lic1", Status: StatusRevoked, Time: t0 + 110*sec}))
}

func TestGoldenSnapshot(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			if *update {
				writeGoldenPair(t, g)
			}
			raw, err := os.ReadFile(g.path("hash"))
			if err != nil {
				t.Fatalf("%v (generate with: go test ./fsm -run TestGoldenSnapshot -update)", err)
			}
			want := strings.TrimSpace(string(raw))

			snap, err := os.ReadFile(g.path("snapshot"))
			if err != nil {
				t.Fatal(err)
			}
			f := restoreBytes(t, snap)
			if got := f.Hash(); got != want {
				t.Fatalf("golden snapshot restores to hash %s, want %s", got, want)
			}
			g.check(t, f)

			replayed := replayLog(t, g.path("log"))
			if got := replayed.Hash(); got != want {
				t.Fatalf("golden log replays to hash %s, want %s", got, want)
			}
			g.check(t, replayed)
		})
	}
}

// TestGoldenHistoriesAreFrozen: each history function still writes, byte
// for byte, the log its golden files were made from, so that the fuzz
// seeds and any regeneration stay the release's own entries.
func TestGoldenHistoriesAreFrozen(t *testing.T) {
	for _, g := range goldens {
		h := newHarness(t)
		g.history(h)
		have, err := os.ReadFile(g.path("log"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encodeLog(h.log), have) {
			t.Fatalf("the %s history no longer writes %s", g.name, g.path("log"))
		}
	}
}

func writeGoldenPair(t *testing.T, g golden) {
	t.Helper()
	if _, err := os.Stat(g.path("log")); err == nil {
		return // golden files are never overwritten
	}
	h := newHarness(t)
	g.history(h)
	writeGolden(t, g.path("log"), encodeLog(h.log))
	writeGolden(t, g.path("snapshot"), snapshotBytes(t, h.f))
	writeGolden(t, g.path("hash"), []byte(h.f.Hash()+"\n"))
}

// encodeLog frames log entries as the golden log files hold them: each a
// big-endian uint32 length, then the entry.
func encodeLog(entries [][]byte) []byte {
	var buf bytes.Buffer
	for _, e := range entries {
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(e))))
		buf.Write(e)
	}
	return buf.Bytes()
}

func checkGoldenState(t *testing.T, f *FSM) {
	t.Helper()
	if p, ok := f.Policy("pol1"); !ok || p.SeatRule != SeatRuleMachine || p.Features[0].Seats != 1 {
		t.Fatalf("policy = %+v", p)
	}
	if l, _ := f.License("lic1"); l.Status != StatusRevoked {
		t.Fatalf("lic1 = %+v", l)
	}
	if l, _ := f.License("lic2"); l.Metadata["a"] != "1" || l.ProductID != "p1" {
		t.Fatalf("lic2 = %+v", l)
	}
	l5, ok := f.Lease("l5")
	if !ok || f.LeaseCount() != 1 || l5.ExpiresAt != t0+690*sec || l5.Holder.Process != "cad.exe" {
		t.Fatalf("leases: l5 = %+v %v, count %d", l5, ok, f.LeaseCount())
	}
	for _, id := range []string{"l1", "l2", "l4", "l6"} {
		if !f.LeaseEnded(id) {
			t.Fatalf("lease %s not remembered as ended", id)
		}
	}
	if u := f.Usage("lic2"); u["cad"] != (SeatUsage{Total: 1, InUse: 1}) {
		t.Fatalf("usage = %v", u)
	}
	if ks := f.Keys(); len(ks) != 1 || ks[0].KID != "n1-1" {
		t.Fatalf("keys = %+v", ks)
	}
	recs := f.Audit(0, 0)
	if err := VerifyChain(recs); err != nil || len(recs) != 17 {
		t.Fatalf("audit: %d records, %v", len(recs), err)
	}
	if f.AppliedIndex() != 19 {
		t.Fatalf("applied = %d", f.AppliedIndex())
	}
	// The exactly-once window survived: a retry of req-5 is answered.
	h := &harness{tb: t, f: f, idx: f.AppliedIndex()}
	r := h.apply(CmdCheckout, Checkout{LeaseID: "l7", LicenseKey: "key-2", Feature: "cad",
		Holder: Holder{Machine: "m9"}, RequestID: "req-5", Time: t0 + 120*sec})
	if !r.Retried || r.Lease.ID != "l5" {
		t.Fatalf("retry after restore = %+v", r)
	}
}

func replayLog(t *testing.T, path string) *FSM {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := New()
	rd := bytes.NewReader(data)
	for idx := uint64(1); ; idx++ {
		var n uint32
		if err := binary.Read(rd, binary.BigEndian, &n); err == io.EOF {
			return f
		} else if err != nil {
			t.Fatalf("log entry %d: %v", idx, err)
		}
		entry := make([]byte, n)
		if _, err := io.ReadFull(rd, entry); err != nil {
			t.Fatalf("log entry %d: %v", idx, err)
		}
		f.Apply(&raft.Log{Index: idx, Data: entry})
	}
}

func writeGolden(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

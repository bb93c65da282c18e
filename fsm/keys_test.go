package fsm

import (
	"bytes"
	"testing"
)

func pubKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func register(h *harness, kid, node string, epoch uint64, t int64) *Result {
	h.tb.Helper()
	return h.apply(CmdRegisterKey, RegisterKey{Key: SigningKey{KID: kid, PublicKey: pubKey(kid[0]), NodeID: node, Epoch: epoch}, Time: t})
}

func TestRegisterKey(t *testing.T) {
	h := newHarness(t)
	if got := codeOf(h.apply(CmdRegisterKey, RegisterKey{Key: SigningKey{KID: "k"}, Time: t0})); got != CodeInvalidRequest {
		t.Fatalf("key without public key: %q", got)
	}
	// A key registered the v1 way (no node id) learns its node later;
	// nothing else about it changes.
	mustOK(t, h.apply(CmdRegisterKey, RegisterKey{Key: SigningKey{KID: "a", PublicKey: pubKey(1)}, Time: t0}))
	mustOK(t, h.apply(CmdRegisterKey, RegisterKey{Key: SigningKey{KID: "a", PublicKey: pubKey(9), NodeID: "n1", Epoch: 5}, Time: t0 + sec}))
	k, ok := h.f.Key("a")
	if !ok || k.NodeID != "n1" || k.Epoch != 0 || k.AddedAt != t0 || !bytes.Equal(k.PublicKey, pubKey(1)) {
		t.Fatalf("re-registered key = %+v", k)
	}
	// A known node id is never overwritten.
	mustOK(t, register(h, "a", "n2", 0, t0+2*sec))
	if k, _ := h.f.Key("a"); k.NodeID != "n1" {
		t.Fatalf("node id overwritten: %+v", k)
	}
}

func TestRotateKeys(t *testing.T) {
	h := newHarness(t)
	if h.f.KeyEpoch() != 0 {
		t.Fatalf("fresh epoch = %d", h.f.KeyEpoch())
	}
	for want := uint64(1); want <= 3; want++ {
		r := mustOK(t, h.apply(CmdRotateKeys, RotateKeys{Time: t0 + int64(want)*sec}))
		if r.KeyEpoch != want || h.f.KeyEpoch() != want {
			t.Fatalf("rotation %d: result epoch %d, state epoch %d", want, r.KeyEpoch, h.f.KeyEpoch())
		}
	}
	if got := auditTypes(h.f, 0); len(got) != 3 || got[2] != AuditKeysRotated {
		t.Fatalf("audit = %v", got)
	}
	if recs := h.f.Audit(2, 0); recs[0].Detail != "epoch=3" {
		t.Fatalf("audit detail = %q", recs[0].Detail)
	}
}

func TestRetireKey(t *testing.T) {
	h := newHarness(t)
	mustOK(t, register(h, "old", "n1", 0, t0))
	mustOK(t, h.apply(CmdRotateKeys, RotateKeys{Time: t0 + sec}))
	mustOK(t, register(h, "new", "n1", 1, t0+2*sec))
	mustOK(t, register(h, "ahead", "n2", 7, t0+2*sec))

	tests := []struct {
		name, kid, code string
	}{
		{"unknown kid", "nope", CodeNotFound},
		{"current epoch", "new", CodeKeyInUse},
		{"later epoch than the state", "ahead", CodeKeyInUse},
		{"older epoch", "old", ""},
		{"retired again is a no-op", "old", ""},
	}
	for i, tt := range tests {
		r := h.apply(CmdRetireKey, RetireKey{KID: tt.kid, Time: t0 + int64(10+i)*sec})
		if got := codeOf(r); got != tt.code {
			t.Fatalf("%s: code %q, want %q", tt.name, got, tt.code)
		}
		if tt.code == "" && (r.Key == nil || r.Key.KID != tt.kid || !r.Key.Retired()) {
			t.Fatalf("%s: result key = %+v", tt.name, r.Key)
		}
	}
	// The first retirement's time stays; one audit record only.
	if k, _ := h.f.Key("old"); k.RetiredAt != t0+13*sec {
		t.Fatalf("retired_at = %d, want %d", k.RetiredAt, t0+13*sec)
	}
	var retired int
	for _, typ := range auditTypes(h.f, 0) {
		if typ == AuditKeyRetired {
			retired++
		}
	}
	if retired != 1 {
		t.Fatalf("%d key.retired records, want 1", retired)
	}
	// A retired key stays retired when its node registers it again.
	mustOK(t, register(h, "old", "n1", 0, t0+20*sec))
	if k, _ := h.f.Key("old"); !k.Retired() {
		t.Fatalf("re-registration revived a retired key: %+v", k)
	}
}

// Epoch, node ids and retirements survive a snapshot; a state that never
// used them hashes as v1 did (TestGoldenSnapshot covers that side).
func TestKeysSurviveSnapshot(t *testing.T) {
	h := newHarness(t)
	mustOK(t, register(h, "old", "n1", 0, t0))
	mustOK(t, h.apply(CmdRotateKeys, RotateKeys{Time: t0 + sec}))
	mustOK(t, register(h, "new", "n2", 1, t0+2*sec))
	mustOK(t, h.apply(CmdRetireKey, RetireKey{KID: "old", Time: t0 + 3*sec}))

	f := restoreBytes(t, snapshotBytes(t, h.f))
	if f.Hash() != h.f.Hash() {
		t.Fatal("restored state hashes differently")
	}
	if f.KeyEpoch() != 1 {
		t.Fatalf("epoch after restore = %d", f.KeyEpoch())
	}
	old, _ := f.Key("old")
	nw, _ := f.Key("new")
	if old.RetiredAt != t0+3*sec || old.NodeID != "n1" || nw.Epoch != 1 || nw.NodeID != "n2" || nw.Retired() {
		t.Fatalf("keys after restore: %+v %+v", old, nw)
	}
}

package fsm

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// upload runs data through CheckUpload and returns what the node would
// hand raft for a restore at index applied in the given term.
func upload(t *testing.T, data []byte, applied, term uint64) []byte {
	t.Helper()
	u, err := CheckUpload(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("CheckUpload: %v", err)
	}
	r, n, err := u.Reader(applied, term)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil || int64(len(out)) != n {
		t.Fatalf("reader: %d bytes of %d, %v", len(out), n, err)
	}
	return out
}

// TestOperatorRestoreOfOlderSnapshot: an operator restore of a backup older
// than the applied state is installed, on the leader and on a follower
// further ahead, and the stale-install guard still holds afterwards.
func TestOperatorRestoreOfOlderSnapshot(t *testing.T) {
	h := newHarness(t)
	h.seed()
	mustOK(t, h.checkout("l1", "m1", "r1", t0))
	backup := snapshotBytes(t, h.f)
	want := restoreBytes(t, backup)
	mustOK(t, h.apply(CmdCreateProduct, CreateProduct{ID: "later", Name: "later"}))
	mustOK(t, h.apply(CmdCheckin, Checkin{LeaseID: "l1", LicenseKey: "key-1", Time: t0 + sec}))

	if err := h.f.Restore(io.NopCloser(bytes.NewReader(backup))); !errors.Is(err, ErrSnapshotBehind) {
		t.Fatalf("the backup as saved: err %v, want ErrSnapshotBehind", err)
	}
	at := h.f.AppliedIndex() + 100
	restored := upload(t, backup, at, 3)
	if err := h.f.Restore(io.NopCloser(bytes.NewReader(restored))); err != nil {
		t.Fatalf("operator restore on the leader: %v", err)
	}
	if got := h.f.AppliedIndex(); got != at {
		t.Fatalf("applied %d after the restore, want %d", got, at)
	}
	if h.f.RestoreTerm() != 3 {
		t.Fatalf("restore term %d, want 3", h.f.RestoreTerm())
	}
	if _, ok := h.f.Product("later"); ok {
		t.Fatal("a product created after the backup survived the restore")
	}
	if _, ok := h.f.Lease("l1"); !ok {
		t.Fatal("a lease live in the backup is gone")
	}
	if !sameEntities(h.f, want) {
		t.Fatal("the restored state differs from the backup")
	}

	// A follower ahead of the restore's own applied index installs it too.
	ahead := New()
	mustOK(t, (&harness{tb: t, f: ahead}).apply(CmdCreateProduct, CreateProduct{ID: "x", Name: "x"}))
	ahead.mu.Lock()
	ahead.st.applied = at + 50
	ahead.mu.Unlock()
	if err := ahead.Restore(io.NopCloser(bytes.NewReader(restored))); err != nil {
		t.Fatalf("operator restore on a follower further ahead: %v", err)
	}

	// After the restore the guard works as before: the restore itself
	// installed again once later commands are applied, and any snapshot
	// from before it, are refused. Raft numbers the entries after the
	// restore past its index.
	h.idx = at + 1
	mustOK(t, h.apply(CmdCreateProduct, CreateProduct{ID: "after", Name: "after"}))
	before := h.f.Hash()
	for name, data := range map[string][]byte{"the restore again": restored, "the backup as saved": backup} {
		if err := h.f.Restore(io.NopCloser(bytes.NewReader(data))); !errors.Is(err, ErrSnapshotBehind) {
			t.Fatalf("%s: err %v, want ErrSnapshotBehind", name, err)
		}
	}
	if h.f.Hash() != before {
		t.Fatal("a refused restore changed the state")
	}
	if err := restoreBytes(t, snapshotBytes(t, h.f)).Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
		t.Fatalf("a snapshot of the restored state: %v", err)
	}

	// A node that restored alone as leader in term 3 and lost leadership
	// takes the next leader's restore of term 4, placed at a lower index.
	if err := ahead.Restore(io.NopCloser(bytes.NewReader(upload(t, backup, at-10, 4)))); err != nil || ahead.RestoreTerm() != 4 {
		t.Fatalf("a later term's restore at a lower index: %v", err)
	}
}

func sameEntities(a, b *FSM) bool {
	strip := func(f *FSM) []byte {
		c := f.capture()
		c.meta = snapMeta{}
		var buf bytes.Buffer
		if err := c.write(&buf); err != nil {
			panic(err)
		}
		return buf.Bytes()
	}
	return bytes.Equal(strip(a), strip(b))
}

// TestCheckUploadRefuses: every kind of bad file is refused with
// ErrInvalidSnapshot before raft could see it.
func TestCheckUploadRefuses(t *testing.T) {
	h := newHarness(t)
	h.seed()
	good := snapshotBytes(t, h.f)
	cases := map[string][]byte{
		"empty":     {},
		"bad magic": append([]byte("TALLYSNAX"), good[9:]...),
		"version 2": append(append([]byte(snapshotMagic), 2), good[10:]...),
		"truncated": good[:len(good)-4],
		"cut short": good[:len(good)/2],
		"trailing":  append(append([]byte(nil), good...), 0xc0),
		"not msgpack": append(append([]byte(snapshotMagic), snapshotVersion),
			[]byte("{\"products\": []}")...),
	}
	for name, data := range cases {
		if _, err := CheckUpload(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrInvalidSnapshot) {
			t.Errorf("%s: err %v, want ErrInvalidSnapshot", name, err)
		}
	}
	u, err := CheckUpload(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatalf("a good snapshot: %v", err)
	}
	if u.Products != 1 || u.Policies != 1 || u.Licenses != 1 || u.Applied() != h.f.AppliedIndex() {
		t.Fatalf("summary %+v applied %d", u, u.Applied())
	}
	// Unchanged meta gives back the very bytes uploaded.
	if same := upload(t, good, u.Applied(), 0); !bytes.Equal(same, good) {
		t.Fatal("Reader with the upload's own meta changed the bytes")
	}
}

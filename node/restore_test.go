package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
	"github.com/tallyhq/tally/token"
)

// listing is what a restore must bring back: every entity by id, with the
// fields the later changes in the test touch.
func listing(f *fsm.FSM) string {
	var out []string
	for _, p := range f.Products() {
		out = append(out, "product "+p.ID)
	}
	for _, p := range f.Policies() {
		out = append(out, "policy "+p.ID)
	}
	for _, l := range f.Licenses() {
		out = append(out, fmt.Sprintf("license %s %s", l.ID, l.Status))
	}
	for _, l := range f.Leases("") {
		out = append(out, "lease "+l.ID)
	}
	recs := f.Audit(0, 1<<30)
	out = append(out, fmt.Sprintf("audit %d %s", len(recs), recs[len(recs)-1].Hash))
	sort.Strings(out)
	return fmt.Sprint(out)
}

// A snapshot saved earlier, restored through a follower after more
// changes (a key rotation among them), becomes exactly the state of every
// node; the cluster then takes checkouts and heartbeats for the restored
// leases, signs with a key its JWKS holds, and rotates to a new key.
func TestRestoreSnapshotEveryNode(t *testing.T) {
	c := newTestCluster(t, 3)
	cl := c.clientAll()
	ctx := context.Background()
	lic := provision(t, cl, 5, 60)
	var kept []string
	for i := 0; i < 3; i++ {
		res, err := checkout(cl, lic.Key, fmt.Sprintf("m%d", i), fmt.Sprintf("r%d", i))
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, res.Lease.ID)
	}
	c.waitApplied()
	var snap bytes.Buffer
	if err := cl.Snapshot(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	want := listing(c.nodes[c.waitLeader()].n.FSM())

	// Changes the restore must undo.
	if _, err := cl.SuspendLicense(ctx, lic.ID); err != nil {
		t.Fatal(err)
	}
	if err := cl.Checkin(ctx, kept[0], lic.Key); err != nil {
		t.Fatal(err)
	}
	provision(t, cl, 1, 60)
	rot, err := cl.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if listing(c.nodes[c.waitLeader()].n.FSM()) == want {
		t.Fatal("the changes did not change the listing")
	}

	var sent int64
	res, err := c.client(c.followers()[0]).RestoreSnapshot(ctx, bytes.NewReader(snap.Bytes()), int64(snap.Len()),
		func(n int64) { sent = n })
	if err != nil {
		t.Fatalf("restore through a follower: %v", err)
	}
	if sent != int64(snap.Len()) || res.Bytes != sent || res.Licenses != 1 || res.Leases != 3 {
		t.Fatalf("restore answer %+v after %d of %d bytes sent", res, sent, snap.Len())
	}
	c.eventually(10*time.Second, "every node has the restored state", func() bool {
		for _, tn := range c.live() {
			if tn.n.FSM().RestoreTerm() == 0 || listing(tn.n.FSM()) != want {
				return false
			}
		}
		return true
	})
	for _, tn := range c.live() {
		if got := tn.n.FSM().AppliedIndex(); got < res.Index {
			t.Errorf("%s: applied index %d below the restore's %d", tn.id, got, res.Index)
		}
	}
	c.checkInvariants()

	// The restored leases are live and re-armed; the license takes
	// checkouts again, signed with a key every node's JWKS holds.
	if _, err := cl.Heartbeat(ctx, kept[0], lic.Key); err != nil {
		t.Fatalf("heartbeat of a lease the restore brought back: %v", err)
	}
	got, err := checkout(cl, lic.Key, "after", "r-after")
	if err != nil {
		t.Fatalf("checkout after the restore: %v", err)
	}
	for i := range c.nodes {
		if _, err := token.Verify(got.Token, keySet(t, c.client(i)), time.Now()); err != nil {
			t.Fatalf("node %d's JWKS does not verify a token signed after the restore: %v", i, err)
		}
	}
	// The leader kept its key of the later epoch the backup never saw; a
	// rotation must still move it to a new key.
	if kidOf(t, got.Token) != rot.KID {
		t.Fatalf("signed with %s after the restore, want the leader's current key %s", kidOf(t, got.Token), rot.KID)
	}
	rot2, err := cl.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rot2.KID == rot.KID || rot2.Epoch <= rot.Epoch {
		t.Fatalf("rotation after the restore: %+v, before %+v", rot2, rot)
	}
	got, err = checkout(cl, lic.Key, "after2", "r-after2")
	if err != nil || kidOf(t, got.Token) != rot2.KID {
		t.Fatalf("checkout after the second rotation: %v", err)
	}
	c.checkInvariants()
}

// A file that is not a whole snapshot is refused with 400 and changes
// nothing, on any node.
func TestRestoreRefusesBadFile(t *testing.T) {
	c := newTestCluster(t, 3)
	cl := c.clientAll()
	ctx := context.Background()
	provision(t, cl, 5, 60)
	c.waitApplied()
	var snap bytes.Buffer
	if err := cl.Snapshot(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	leader := c.waitLeader()
	before := c.nodes[leader].n.FSM().Hash()
	good := snap.Bytes()
	for name, data := range map[string][]byte{
		"not a snapshot": []byte("hello, this is not a snapshot"),
		"truncated":      good[:len(good)-10],
		"bad version":    append(append([]byte("TALLYSNAP"), 9), good[10:]...),
	} {
		for _, i := range []int{leader, c.followers()[0]} {
			_, err := c.client(i).RestoreSnapshot(ctx, bytes.NewReader(data), int64(len(data)), nil)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeInvalidRequest || ae.Message == "" {
				t.Fatalf("%s through node %d: err %v, want invalid_request", name, i, err)
			}
		}
	}
	for _, tn := range c.live() {
		if h := tn.n.FSM().Hash(); h != before || tn.n.FSM().RestoreTerm() != 0 {
			t.Fatalf("%s: a refused restore changed the state", tn.id)
		}
	}
	if _, err := checkout(cl, c.nodes[leader].n.FSM().Licenses()[0].Key, "m", "r"); err != nil {
		t.Fatalf("checkout after refused restores: %v", err)
	}
	c.checkInvariants()
}

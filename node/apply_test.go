package node

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/fsm"
)

// ApplyBatch wakes a reader waiting for an index in the batch, advances the
// waiter to the last command (not a trailing configuration entry, which
// the FSM never applies) and pokes the key loop only for a batch holding a
// RotateKeys.
func TestNotifyingFSMApplyBatch(t *testing.T) {
	encode := func(typ fsm.CommandType, body any) []byte {
		data, err := fsm.Encode(typ, body)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	product := func(id string) []byte {
		return encode(fsm.CmdCreateProduct, fsm.CreateProduct{ID: id, Name: id, Time: 1})
	}
	rotations := 0
	f := &notifyingFSM{FSM: fsm.New(), applied: newAppliedWaiter(), keyEpoch: func() { rotations++ }}

	waited := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		waited <- f.applied.wait(ctx, 2)
	}()
	res := f.ApplyBatch([]*raft.Log{
		{Index: 1, Type: raft.LogCommand, Data: product("p1")},
		{Index: 2, Type: raft.LogCommand, Data: product("p2")},
		{Index: 3, Type: raft.LogConfiguration, Data: []byte{byte(fsm.CmdRotateKeys)}},
	})
	if len(res) != 3 || res[2] != nil {
		t.Fatalf("results %v: want three, the configuration entry's nil", res)
	}
	if r, ok := res[1].(*fsm.Result); !ok || r.Product == nil || r.Product.ID != "p2" {
		t.Fatalf("second result %#v, want product p2", res[1])
	}
	if err := <-waited; err != nil {
		t.Fatalf("waiter for index 2: %v", err)
	}
	if got := f.applied.index; got != 2 {
		t.Fatalf("waiter at %d, want 2 (the last command)", got)
	}
	if rotations != 0 {
		t.Fatalf("key loop poked %d times without a RotateKeys", rotations)
	}

	f.ApplyBatch([]*raft.Log{
		{Index: 4, Type: raft.LogCommand, Data: encode(fsm.CmdRotateKeys, fsm.RotateKeys{Time: 2})},
		{Index: 5, Type: raft.LogCommand, Data: product("p3")},
	})
	if rotations != 1 {
		t.Fatalf("key loop poked %d times for one RotateKeys, want 1", rotations)
	}
	if got := f.FSM.KeyEpoch(); got != 1 {
		t.Fatalf("key epoch %d after the rotation, want 1", got)
	}
	if got := f.applied.index; got != 5 {
		t.Fatalf("waiter at %d, want 5", got)
	}
}

// A wait for a reached index returns at once; one for a later index ends
// with its context.
func TestAppliedWaiter(t *testing.T) {
	w := newAppliedWaiter()
	w.set(7)
	if err := w.wait(context.Background(), 7); err != nil {
		t.Fatalf("wait for a reached index: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := w.wait(ctx, 8); err != context.DeadlineExceeded {
		t.Fatalf("wait for an unreached index: %v, want deadline exceeded", err)
	}
	w.set(8) // closes the channel the timed-out waiter left
	if err := w.wait(context.Background(), 8); err != nil {
		t.Fatalf("wait after the advance: %v", err)
	}
}

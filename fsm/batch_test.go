package fsm

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
)

// TestApplyBatchMatchesApply replays random command sequences (the random
// test's world, so every command type and refusal occurs) once entry by
// entry through Apply and once in random batches through ApplyBatch, with
// configuration entries and ignorable unknown commands mixed in, and
// requires the same results, applied index and state hash.
func TestApplyBatchMatchesApply(t *testing.T) {
	for seed := int64(0); seed < 300; seed++ {
		w := newWorld(t, seed, map[string]int{})
		for i, n := 0, 50+w.rng.Intn(51); i < n; i++ {
			w.step()
		}
		if t.Failed() {
			t.Fatalf("seed %d: the random sequence failed", seed)
		}
		rng := rand.New(rand.NewSource(seed))
		entries := mixedLog(rng, w.h.log)

		one := New()
		want := make([]interface{}, len(entries))
		for i, l := range entries {
			if l.Type == raft.LogCommand { // raft calls Apply for commands only
				want[i] = one.Apply(l)
			}
		}
		batched := New()
		var got []interface{}
		for i := 0; i < len(entries); {
			end := i + 1 + rng.Intn(64)
			if end > len(entries) {
				end = len(entries)
			}
			res := batched.ApplyBatch(entries[i:end])
			if len(res) != end-i {
				t.Fatalf("seed %d: ApplyBatch of %d entries returned %d results", seed, end-i, len(res))
			}
			got = append(got, res...)
			i = end
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("seed %d: entry %d (type %v): ApplyBatch gave %#v, Apply gave %#v", seed, i, entries[i].Type, got[i], want[i])
			}
		}
		if batched.Hash() != one.Hash() {
			t.Fatalf("seed %d: state hashes differ", seed)
		}
		if batched.AppliedIndex() != one.AppliedIndex() {
			t.Fatalf("seed %d: applied index %d, want %d", seed, batched.AppliedIndex(), one.AppliedIndex())
		}
	}
}

// mixedLog numbers the commands as raft would and mixes in configuration
// entries whose data would apply as a RotateKeys if ApplyBatch did not
// skip them, and unknown commands marked ignorable.
func mixedLog(rng *rand.Rand, cmds [][]byte) []*raft.Log {
	rotate, err := Encode(CmdRotateKeys, RotateKeys{Time: t0})
	if err != nil {
		panic(err)
	}
	var out []*raft.Log
	add := func(typ raft.LogType, data []byte) {
		out = append(out, &raft.Log{Index: uint64(len(out) + 1), Type: typ, Data: data})
	}
	for _, data := range cmds {
		if rng.Intn(10) == 0 {
			add(raft.LogConfiguration, rotate)
		}
		if rng.Intn(15) == 0 {
			add(raft.LogCommand, []byte{byte(IgnoreUnknownFlag | 0x7f), commandVersion})
		}
		add(raft.LogCommand, data)
	}
	return out
}

// TestApplyBatchPanicsWhereApplyWould: an entry that does not decode stops
// the batch after the entries before it, with Apply's message, and leaves
// the lock free.
func TestApplyBatchPanicsWhereApplyWould(t *testing.T) {
	h := newHarness(t)
	h.seed()
	var entries []*raft.Log
	for i, data := range h.log {
		entries = append(entries, &raft.Log{Index: uint64(i + 1), Data: data})
	}
	checkout, err := Encode(CmdCheckout, Checkout{LeaseID: "L1", LicenseKey: "key-1", Feature: "cad", Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(len(entries))
	entries = append(entries,
		&raft.Log{Index: n + 1, Data: []byte{0x7f, commandVersion}}, // unknown, not ignorable
		&raft.Log{Index: n + 2, Data: checkout})

	f := New()
	msg := func() (msg string) {
		defer func() { msg = fmt.Sprint(recover()) }()
		f.ApplyBatch(entries)
		return "no panic"
	}()
	if want := fmt.Sprintf("fsm: log entry %d: unknown command type 127", n+1); msg != want {
		t.Fatalf("panic %q, want %q", msg, want)
	}
	if got := f.AppliedIndex(); got != n {
		t.Fatalf("applied index %d after the panic, want %d", got, n)
	}
	if f.Hash() != h.f.Hash() {
		t.Fatal("the entries before the bad one did not apply as Apply applies them")
	}
	if _, ok := f.Lease("L1"); ok {
		t.Fatal("the entry after the bad one was applied")
	}
}

package fsm

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeCommand feeds arbitrary log entries to the decoder Apply uses.
// Apply panics on what the decoder refuses (by design: a node must not go
// on with a log it cannot read), so the decoder itself must never panic,
// and what it accepts must survive a round trip through Encode (at the
// version it was read with) unchanged:
// otherwise a leader could propose a command that followers read
// differently.
func FuzzDecodeCommand(f *testing.F) {
	for _, g := range goldens {
		h := newHarness(f)
		g.history(h)
		for _, e := range h.log {
			f.Add(e)
		}
	}
	empty, _ := Encode(CmdUpdateLicense, UpdateLicense{ID: "l", Overrides: &Overrides{Seats: []Feature{}}})
	f.Add(empty)
	f.Add([]byte{})
	f.Add([]byte{byte(IgnoreUnknownFlag | 0x7e), 1})
	f.Add([]byte{byte(CmdCheckout), 2})
	f.Add([]byte{byte(CmdCheckout), checkoutVersion + 1, 0x80})

	fsm := New()
	f.Fuzz(func(t *testing.T, data []byte) {
		_, c, err := fsm.decode(data)
		if err != nil {
			if c != nil {
				t.Fatalf("decode returned a command with error %v", err)
			}
			if errors.Is(err, errSkip) && (len(data) == 0 || data[0]&byte(IgnoreUnknownFlag) == 0) {
				t.Fatalf("skipped an entry without the ignore flag: %x", data)
			}
			return
		}
		again, err := encodeVersion(CommandType(data[0]), data[1], c)
		if err != nil {
			t.Fatalf("re-encode %T: %v", c, err)
		}
		_, c2, err := fsm.decode(again)
		if err != nil {
			t.Fatalf("re-encoded %T does not decode: %v", c, err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the command:\n%#v\n%#v", c, c2)
		}
	})
}

package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
)

// Body versions. A command's version byte says how Apply treats it, so a
// change of what Apply does for an existing command gets a new version and
// entries of the old one replay exactly as before. Every command is at
// version 1 except Checkout: at version 2 every refusal of a known license
// writes a lease.denied record (version 1 audits only "no seats"); at
// version 3 it also keeps the usage counters (usage.go); at version 4 a
// lease's deadline (and a borrow's end) is capped at the license's expiry,
// so no lease outlives its license. Encode writes a command's current
// version; decode accepts 1 to current.
const checkoutVersion = 4

// currentVersion is the body version this build writes for type t.
func currentVersion(t CommandType) byte {
	if t&^IgnoreUnknownFlag == CmdCheckout {
		return checkoutVersion
	}
	return 1
}

// versioned is a command whose Apply depends on its body version; decode
// tells it the version it was read with.
type versioned interface{ setVersion(v byte) }

func (c *Checkout) setVersion(v byte) { c.version = v }

// FSM is Tally's replicated entitlement state machine. Apply is called by
// Raft; the read methods may be called concurrently from any goroutine.
type FSM struct {
	mu       sync.RWMutex
	st       *state
	handlers map[CommandType]handler
}

var _ raft.FSM = (*FSM)(nil)

// handler is one command type's entry in the dispatch table: decode reads
// its body, apply changes the state. They are apart so that decoding can be
// tested (and fuzzed) without Apply's panic.
type handler struct {
	decode func(body []byte) (timed, error)
	apply  func(s *state, c timed) *Result
}

// New returns an empty state machine with its dispatch table.
func New() *FSM {
	f := &FSM{st: newState()}
	f.handlers = map[CommandType]handler{
		CmdCreateProduct:    command((*state).applyCreateProduct),
		CmdCreatePolicy:     command((*state).applyCreatePolicy),
		CmdUpdatePolicy:     command((*state).applyUpdatePolicy),
		CmdCreateLicense:    command((*state).applyCreateLicense),
		CmdSetLicenseStatus: command((*state).applySetLicenseStatus),
		CmdCheckout:         command((*state).applyCheckout),
		CmdCheckin:          command((*state).applyCheckin),
		CmdRevokeLease:      command((*state).applyRevokeLease),
		CmdExpireLeases:     command((*state).applyExpireLeases),
		CmdCheckpointLeases: command((*state).applyCheckpointLeases),
		CmdRegisterKey:      command((*state).applyRegisterKey),
		CmdRotateKeys:       command((*state).applyRotateKeys),
		CmdRetireKey:        command((*state).applyRetireKey),
		CmdUpdateLicense:    command((*state).applyUpdateLicense),
	}
	return f
}

// timed is every command: each carries the leader's time stamp.
type timed interface{ when() int64 }

func (c *CreateProduct) when() int64    { return c.Time }
func (c *CreatePolicy) when() int64     { return c.Time }
func (c *UpdatePolicy) when() int64     { return c.Time }
func (c *CreateLicense) when() int64    { return c.Time }
func (c *SetLicenseStatus) when() int64 { return c.Time }
func (c *Checkout) when() int64         { return c.Time }
func (c *Checkin) when() int64          { return c.Time }
func (c *RevokeLease) when() int64      { return c.Time }
func (c *ExpireLeases) when() int64     { return c.Time }
func (c *CheckpointLeases) when() int64 { return c.Time }
func (c *RegisterKey) when() int64      { return c.Time }
func (c *RotateKeys) when() int64       { return c.Time }
func (c *RetireKey) when() int64        { return c.Time }

// command adapts a typed applyX into a table entry: decode the body into
// its command type; apply advances the remembered windows to the command's
// time, then applies.
func command[C any, P interface {
	*C
	timed
}](apply func(*state, P) *Result) handler {
	return handler{
		decode: func(body []byte) (timed, error) {
			c := P(new(C))
			if err := msgpack.Unmarshal(body, c); err != nil {
				return nil, fmt.Errorf("cannot decode %T: %w", c, err)
			}
			return c, nil
		},
		apply: func(s *state, c timed) *Result {
			s.tick(c.when())
			return apply(s, c.(P))
		},
	}
}

// errSkip is decode's answer for an unknown command marked with
// IgnoreUnknownFlag: Apply skips it.
var errSkip = errors.New("fsm: unknown command marked ignorable")

// decode splits a log entry into its handler and decoded command. Every
// error but errSkip is one Apply must panic on.
func (f *FSM) decode(data []byte) (handler, timed, error) {
	if len(data) == 0 {
		return handler{}, nil, errors.New("empty log entry")
	}
	t := CommandType(data[0])
	h, known := f.handlers[t&^IgnoreUnknownFlag]
	if !known {
		if t&IgnoreUnknownFlag != 0 {
			return handler{}, nil, errSkip
		}
		return handler{}, nil, fmt.Errorf("unknown command type %d", t)
	}
	if len(data) < 2 || data[1] < 1 || data[1] > currentVersion(t) {
		return handler{}, nil, fmt.Errorf("command type %d has unknown body version", t)
	}
	c, err := h.decode(data[2:])
	if err != nil {
		return handler{}, nil, err
	}
	if vc, ok := c.(versioned); ok {
		vc.setVersion(data[1])
	}
	return h, c, nil
}

// Apply applies one committed log entry. It returns a *Result for every
// known command (a refusal is a Result, not an error) and nil for an
// unknown command marked with IgnoreUnknownFlag. Anything it cannot decode
// panics: continuing would let this node's state diverge.
func (f *FSM) Apply(l *raft.Log) interface{} {
	h, c, err := f.decode(l.Data)
	if errors.Is(err, errSkip) {
		f.mu.Lock()
		f.st.applied = l.Index
		f.mu.Unlock()
		return nil
	}
	if err != nil {
		panic(fmt.Sprintf("fsm: log entry %d: %v", l.Index, err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := h.apply(f.st, c)
	f.st.applied = l.Index
	return res
}

// Encode builds a log entry: [type byte][version byte][msgpack body], at
// the command type's current version.
func Encode(t CommandType, body any) ([]byte, error) {
	return encodeVersion(t, currentVersion(t), body)
}

// encodeVersion is Encode at body version v, for tests that write the
// entries of an older release.
func encodeVersion(t CommandType, v byte, body any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(byte(t))
	buf.WriteByte(v)
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(body); err != nil {
		return nil, fmt.Errorf("fsm: encode command %d: %w", t, err)
	}
	return buf.Bytes(), nil
}

// refuse builds a domain refusal.
func refuse(code, format string, args ...any) *Result {
	return &Result{Refusal: &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}}
}

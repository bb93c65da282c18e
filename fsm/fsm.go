package fsm

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
)

// commandVersion is the body version byte every command carries today.
const commandVersion = 1

// FSM is Tally's replicated entitlement state machine. Apply is called by
// Raft; the read methods may be called concurrently from any goroutine.
type FSM struct {
	mu       sync.RWMutex
	st       *state
	handlers map[CommandType]handler
}

var _ raft.FSM = (*FSM)(nil)

// handler decodes one command body and applies it to the state.
type handler func(s *state, body []byte) *Result

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

// command adapts a typed applyX into a table entry: decode (a failure is a
// bug and panics), advance the remembered windows to the command's time,
// then apply.
func command[C any, P interface {
	*C
	timed
}](apply func(*state, P) *Result) handler {
	return func(s *state, body []byte) *Result {
		c := P(new(C))
		if err := msgpack.Unmarshal(body, c); err != nil {
			panic(fmt.Sprintf("fsm: cannot decode %T: %v", c, err))
		}
		s.tick(c.when())
		return apply(s, c)
	}
}

// Apply applies one committed log entry. It returns a *Result for every
// known command (a refusal is a Result, not an error) and nil for an
// unknown command marked with IgnoreUnknownFlag. Anything it cannot decode
// panics: continuing would let this node's state diverge.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if len(l.Data) == 0 {
		panic("fsm: empty log entry")
	}
	t := CommandType(l.Data[0])
	h, known := f.handlers[t&^IgnoreUnknownFlag]
	if !known {
		if t&IgnoreUnknownFlag != 0 {
			f.mu.Lock()
			f.st.applied = l.Index
			f.mu.Unlock()
			return nil
		}
		panic(fmt.Sprintf("fsm: unknown command type %d at index %d", t, l.Index))
	}
	if len(l.Data) < 2 || l.Data[1] != commandVersion {
		panic(fmt.Sprintf("fsm: command type %d at index %d has unknown body version", t, l.Index))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := h(f.st, l.Data[2:])
	f.st.applied = l.Index
	return res
}

// Encode builds a log entry: [type byte][version byte][msgpack body].
func Encode(t CommandType, body any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(byte(t))
	buf.WriteByte(commandVersion)
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

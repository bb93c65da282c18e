package fsm

import (
	"bytes"
	"errors"
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

var _ raft.BatchingFSM = (*FSM)(nil)

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
	if len(data) < 2 || data[1] != commandVersion {
		return handler{}, nil, fmt.Errorf("command type %d has unknown body version", t)
	}
	c, err := h.decode(data[2:])
	if err != nil {
		return handler{}, nil, err
	}
	return h, c, nil
}

// Apply applies one committed log entry. It returns a *Result for every
// known command (a refusal is a Result, not an error) and nil for an
// unknown command marked with IgnoreUnknownFlag. Anything it cannot decode
// panics: continuing would let this node's state diverge.
func (f *FSM) Apply(l *raft.Log) interface{} {
	h, c, err := f.decode(l.Data)
	if err != nil && !errors.Is(err, errSkip) {
		panic(fmt.Sprintf("fsm: log entry %d: %v", l.Index, err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applyDecoded(l.Index, h, c, err)
}

// ApplyBatch is raft.BatchingFSM: it applies a run of committed entries in
// order under one write lock, with the results Apply gives one by one.
// Raft also hands a batching FSM its configuration entries, which never
// reach Apply: they get nil and leave the applied index alone. Decoding
// runs before the lock, so readers wait only for the applies. An entry
// that does not decode panics after the entries before it are applied,
// exactly where a run of Apply calls would have stopped.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	cmds := make([]decodedEntry, 0, len(logs))
	var bad error
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		h, c, err := f.decode(l.Data)
		if err != nil && !errors.Is(err, errSkip) {
			bad = fmt.Errorf("fsm: log entry %d: %v", l.Index, err)
			break
		}
		cmds = append(cmds, decodedEntry{pos: i, index: l.Index, h: h, c: c, skip: err})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range cmds {
		out[e.pos] = f.applyDecoded(e.index, e.h, e.c, e.skip)
	}
	if bad != nil {
		panic(bad.Error())
	}
	return out
}

// decodedEntry is one command of a batch between decode and apply.
type decodedEntry struct {
	pos   int // in the batch
	index uint64
	h     handler
	c     timed
	skip  error // errSkip or nil
}

// applyDecoded applies one decoded entry; the caller holds f.mu. A skipped
// entry (errSkip) only advances the applied index.
func (f *FSM) applyDecoded(index uint64, h handler, c timed, skip error) interface{} {
	if skip != nil {
		f.st.applied = index
		return nil
	}
	res := h.apply(f.st, c)
	f.st.applied = index
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

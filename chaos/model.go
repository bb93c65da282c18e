package chaos

// This file is the sequential specification of one seat pool that
// porcupine checks a history against: what a correct license server may
// answer, one operation at a time.

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// poolInput is what a client asked (porcupine's "input"). It carries the
// pool because the seat count differs per pool and porcupine's Init and
// Step do not know which partition they are in.
type poolInput struct {
	Pool      string
	Client    int
	Kind      OpKind
	RequestID string // checkout
	LeaseID   string // checkin, heartbeat, expire (a checkout's lease is an output)
	// Tracked says the model must remember this checkout's request id:
	// another checkout answer of the same request exists in the pool. A
	// request answered once cannot contradict itself, so the others are
	// left out of the state, which keeps it small and the search fast.
	Tracked bool
}

// poolOutput is what the server answered (porcupine's "output").
type poolOutput struct {
	Outcome Outcome
	LeaseID string // checkout OK: the lease granted
	Count   int    // count OK
}

// grant remembers that a request was answered with a lease.
type grant struct {
	RequestID string
	LeaseID   string
}

// poolState is the model's state of one pool. It is immutable: Step
// returns a new value, as porcupine requires. Both slices are sorted, so
// equal states have equal slices.
type poolState struct {
	held    []string // lease ids holding a seat
	granted []grant  // tracked request id → lease id, by request id
}

func (s poolState) holds(lease string) bool {
	_, ok := slices.BinarySearch(s.held, lease)
	return ok
}

func (s poolState) grantOf(request string) (grant, bool) {
	i, ok := slices.BinarySearchFunc(s.granted, request, func(g grant, r string) int {
		return strings.Compare(g.RequestID, r)
	})
	if !ok {
		return grant{}, false
	}
	return s.granted[i], true
}

// take returns the state with lease held and, if track, request → lease
// remembered.
func (s poolState) take(lease, request string, track bool) poolState {
	held := make([]string, 0, len(s.held)+1)
	held = append(held, s.held...)
	i, _ := slices.BinarySearch(held, lease)
	held = slices.Insert(held, i, lease)
	next := poolState{held: held, granted: s.granted}
	if track {
		g := make([]grant, 0, len(s.granted)+1)
		g = append(g, s.granted...)
		j, _ := slices.BinarySearchFunc(g, request, func(g grant, r string) int {
			return strings.Compare(g.RequestID, r)
		})
		next.granted = slices.Insert(g, j, grant{RequestID: request, LeaseID: lease})
	}
	return next
}

// release returns the state without lease.
func (s poolState) release(lease string) poolState {
	i, ok := slices.BinarySearch(s.held, lease)
	if !ok {
		return s
	}
	held := make([]string, 0, len(s.held)-1)
	held = append(held, s.held[:i]...)
	held = append(held, s.held[i+1:]...)
	return poolState{held: held, granted: s.granted}
}

// step is the specification: is out a legal answer to in from state s, and
// what is the state after it. seats is the pool's seat count.
func (s poolState) step(seats int, in poolInput, out poolOutput) (bool, poolState) {
	switch in.Kind {
	case OpCheckout:
		return s.stepCheckout(seats, in, out)
	case OpCount:
		return out.Outcome == OutcomeOK && out.Count == len(s.held), s
	case OpHeartbeat:
		switch out.Outcome {
		case OutcomeOK:
			return s.holds(in.LeaseID), s
		case OutcomeGone:
			return !s.holds(in.LeaseID), s
		}
	case OpCheckin:
		switch out.Outcome {
		case OutcomeOK: // idempotent: checking in an ended lease succeeds
			return true, s.release(in.LeaseID)
		case OutcomeGone: // 404: the server knows no such lease
			return !s.holds(in.LeaseID), s
		}
	case OpExpire:
		return s.holds(in.LeaseID), s.release(in.LeaseID)
	}
	// Any other pairing (a Full heartbeat, an unresolved outcome) is not an
	// answer a correct server gives; Check leaves unresolved ones out.
	return false, s
}

// stepCheckout: a retried request answers its original lease while that
// lease is held, and "lease ended" (410) once it is not; a new request takes
// a free seat or is refused Full when none is free.
func (s poolState) stepCheckout(seats int, in poolInput, out poolOutput) (bool, poolState) {
	g, seen := grant{}, false
	if in.Tracked && in.RequestID != "" {
		g, seen = s.grantOf(in.RequestID)
	}
	switch out.Outcome {
	case OutcomeOK:
		if seen { // a second, different lease for one request breaks exactly-once
			return g.LeaseID == out.LeaseID && s.holds(g.LeaseID), s
		}
		if out.LeaseID == "" || s.holds(out.LeaseID) || len(s.held) >= seats {
			return false, s
		}
		return true, s.take(out.LeaseID, in.RequestID, in.Tracked && in.RequestID != "")
	case OutcomeFull:
		return len(s.held) >= seats, s
	case OutcomeGone:
		return seen && !s.holds(g.LeaseID), s
	}
	return false, s
}

func (s poolState) equal(o poolState) bool {
	return slices.Equal(s.held, o.held) && slices.Equal(s.granted, o.granted)
}

func (s poolState) hash() uint64 {
	h := fnv.New64a()
	for _, l := range s.held {
		h.Write([]byte(l))
		h.Write([]byte{0})
	}
	h.Write([]byte{1})
	for _, g := range s.granted {
		h.Write([]byte(g.RequestID))
		h.Write([]byte{0})
		h.Write([]byte(g.LeaseID))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func (s poolState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d held {%s}", len(s.held), strings.Join(s.held, ", "))
	if len(s.granted) > 0 {
		parts := make([]string, len(s.granted))
		for i, g := range s.granted {
			parts[i] = g.RequestID + "→" + g.LeaseID
		}
		fmt.Fprintf(&b, " retried {%s}", strings.Join(parts, ", "))
	}
	return b.String()
}

// describeOp renders one operation for the visualization, e.g.
// "c3 checkout r17 → lse_x OK".
func describeOp(in poolInput, out poolOutput) string {
	who := fmt.Sprintf("c%d", in.Client)
	if in.Client < 0 {
		who = "leader"
	}
	switch in.Kind {
	case OpCheckout:
		if out.Outcome == OutcomeOK {
			return fmt.Sprintf("%s checkout %s → %s OK", who, in.RequestID, out.LeaseID)
		}
		return fmt.Sprintf("%s checkout %s → %s", who, in.RequestID, outcomeName(out.Outcome))
	case OpCount:
		return fmt.Sprintf("%s count → %d", who, out.Count)
	case OpExpire:
		return fmt.Sprintf("%s expire %s", who, in.LeaseID)
	}
	return fmt.Sprintf("%s %s %s → %s", who, kindName(in.Kind), in.LeaseID, outcomeName(out.Outcome))
}

// poolModel is the porcupine model of every pool of a history: partitioned
// by pool (pools share nothing, so each is checked alone), with the seat
// count looked up by the operation's pool. A pool missing from seats has 0
// seats, so any grant in it is reported.
func poolModel(seats map[string]int) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byPool := map[string][]porcupine.Operation{}
			for _, op := range history {
				p := op.Input.(poolInput).Pool
				byPool[p] = append(byPool[p], op)
			}
			pools := make([]string, 0, len(byPool))
			for p := range byPool {
				pools = append(pools, p)
			}
			sort.Strings(pools)
			out := make([][]porcupine.Operation, 0, len(pools))
			for _, p := range pools {
				out = append(out, byPool[p])
			}
			return out
		},
		Init: func() any { return poolState{} },
		Step: func(state, input, output any) (bool, any) {
			in := input.(poolInput)
			return state.(poolState).step(seats[in.Pool], in, output.(poolOutput))
		},
		Equal: func(a, b any) bool { return a.(poolState).equal(b.(poolState)) },
		Hash:  func(s any) uint64 { return s.(poolState).hash() },
		DescribeOperation: func(input, output any) string {
			return describeOp(input.(poolInput), output.(poolOutput))
		},
		DescribeState: func(s any) string { return s.(poolState).String() },
		DescribeOperationMetadata: func(info any) string {
			if info == nil {
				return ""
			}
			return fmt.Sprint(info)
		},
	}
}

// kindName names an operation kind in reports (a function, not a String
// method, so the workload's files stay free to define one).
func kindName(k OpKind) string {
	switch k {
	case OpCheckout:
		return "checkout"
	case OpCheckin:
		return "checkin"
	case OpHeartbeat:
		return "heartbeat"
	case OpCount:
		return "count"
	case OpExpire:
		return "expire"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// outcomeName names an outcome in reports.
func outcomeName(o Outcome) string {
	switch o {
	case OutcomeOK:
		return "OK"
	case OutcomeFull:
		return "Full"
	case OutcomeGone:
		return "Gone"
	case OutcomeUnknown:
		return "Unknown"
	case OutcomeFailed:
		return "Failed"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

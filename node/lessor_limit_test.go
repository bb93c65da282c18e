package node

import (
	"testing"

	"github.com/tallyhq/tally/fsm"
)

// TestLessorCapsDeadlinesAtTheLimit: no deadline the lessor holds, arms,
// renews or checkpoints passes a lease's limit (its license's expiry),
// except a replicated deadline from before the cap, which the FSM would
// not expire earlier anyway.
func TestLessorCapsDeadlinesAtTheLimit(t *testing.T) {
	const ttl, limit = 60, 1000
	tests := []struct {
		name   string
		arm    func(l *lessor) (int64, bool) // returns the deadline answered, if any
		want   int64
		stored int64
	}{
		{"add within the limit", func(l *lessor) (int64, bool) {
			l.add(fsm.Lease{ID: "a", ExpiresAt: 900, TTL: ttl}, limit)
			return 0, false
		}, 900, 900},
		{"add past the limit", func(l *lessor) (int64, bool) {
			l.add(fsm.Lease{ID: "a", ExpiresAt: 1100, TTL: ttl}, limit)
			return 0, false
		}, 1100, 1100}, // stored before the cap: kept
		{"renew without a limit", func(l *lessor) (int64, bool) {
			return l.renew(fsm.Lease{ID: "a", ExpiresAt: 900, TTL: ttl}, 0, 980)
		}, 1040, 900},
		{"renew capped", func(l *lessor) (int64, bool) {
			return l.renew(fsm.Lease{ID: "a", ExpiresAt: 900, TTL: ttl}, limit, 980)
		}, limit, 900},
		{"renew within the limit", func(l *lessor) (int64, bool) {
			return l.renew(fsm.Lease{ID: "a", ExpiresAt: 900, TTL: ttl}, limit, 920)
		}, 980, 900},
		{"renew of a lease stored past the limit", func(l *lessor) (int64, bool) {
			return l.renew(fsm.Lease{ID: "a", ExpiresAt: 1010, TTL: ttl}, limit, 980)
		}, 1010, 1010},
		{"rearm capped", func(l *lessor) (int64, bool) {
			l.rearm([]fsm.LeaseTimer{{ID: "a", ExpiresAt: 900, TTL: ttl, Limit: limit}}, 990)
			return 0, false
		}, limit, 900},
		{"rearm of a borrow capped", func(l *lessor) (int64, bool) {
			l.rearm([]fsm.LeaseTimer{{ID: "a", ExpiresAt: limit, TTL: ttl, Limit: limit}}, 990)
			return 0, false
		}, limit, limit},
		{"rearm without a limit", func(l *lessor) (int64, bool) {
			l.rearm([]fsm.LeaseTimer{{ID: "a", ExpiresAt: 900, TTL: ttl}}, 990)
			return 0, false
		}, 1050, 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLessor()
			answered, ok := tt.arm(l)
			if ok && answered != tt.want {
				t.Fatalf("answered %d, want %d", answered, tt.want)
			}
			if at, _ := l.deadline("a"); at != tt.want {
				t.Fatalf("deadline %d, want %d", at, tt.want)
			}
			// A checkpoint carries the held deadline, so it is capped too.
			ds := l.drifted(0, 10)
			if tt.want > tt.stored && (len(ds) != 1 || ds[0].ExpiresAt != tt.want) {
				t.Fatalf("checkpoint %+v, want deadline %d", ds, tt.want)
			}
			if tt.want == tt.stored && len(ds) != 0 {
				t.Fatalf("checkpoint %+v of an unmoved deadline", ds)
			}
		})
	}
}

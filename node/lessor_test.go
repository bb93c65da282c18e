package node

import (
	"context"
	"testing"
	"time"

	"github.com/tallyhq/tally/fsm"
)

func TestLessorPopsDueAndRefusesRenewalWhileExpiring(t *testing.T) {
	l := newLessor()
	l.rearm([]fsm.LeaseTimer{
		{ID: "a", ExpiresAt: 100, TTL: 10},
		{ID: "b", ExpiresAt: 100, TTL: 50},
	}, 95)
	// Re-arming never moves a deadline earlier: max(stored, now+TTL).
	if at, _ := l.deadline("a"); at != 105 {
		t.Fatalf("a re-armed to %d, want 105", at)
	}
	if at, _ := l.deadline("b"); at != 145 {
		t.Fatalf("b re-armed to %d, want 145", at)
	}
	if due := l.popDue(104, 10); len(due) != 0 {
		t.Fatalf("popped %v before any deadline", due)
	}
	due := l.popDue(105, 10)
	if len(due) != 1 || due[0] != "a" {
		t.Fatalf("popped %v at 105, want [a]", due)
	}
	// While a's expiry is in flight it can be neither renewed nor settled.
	if _, ok := l.renew(fsm.Lease{ID: "a", ExpiresAt: 100, TTL: 10}, 0, 106); ok {
		t.Fatal("renewed a lease whose expiry is in flight")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.waitSettled(ctx, "a", time.Second); err == nil {
		t.Fatal("waitSettled returned while the expiry was in flight")
	}
	// The proposal failed: a is back, due at once, and heartbeats may wait
	// for that decision instead of guessing.
	done := make(chan error, 1)
	go func() { done <- l.waitSettled(context.Background(), "a", 5*time.Second) }()
	l.unexpire([]fsm.Lease{{ID: "a", ExpiresAt: 100, TTL: 10}}, 107)
	if err := <-done; err != nil {
		t.Fatalf("waitSettled after the decision: %v", err)
	}
	if at, ok := l.renew(fsm.Lease{ID: "a", ExpiresAt: 100, TTL: 10}, 0, 108); !ok || at != 118 {
		t.Fatalf("renew after a failed expiry: %d %v, want 118 true", at, ok)
	}
	l.forget([]string{"a", "b"})
	if l.len() != 0 {
		t.Fatalf("%d leases left after forget", l.len())
	}
}

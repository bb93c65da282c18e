package node

import (
	"context"
	"testing"
	"time"
)

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

//go:build chaosbugs

package fsm

import (
	"os"
	"time"
)

// Planted bugs for the chaos suite's sensitivity tests, chosen by the
// TALLY_CHAOS_BUG environment variable. Never in a release build.
var plantedBug = os.Getenv("TALLY_CHAOS_BUG")

// skip-seat-check: a checkout never runs out of seats.
var bugSkipSeatCheck = plantedBug == "skip-seat-check"

// wallClock is how the wall-clock-apply bug reads the clock in Apply.
var wallClock = time.Now

// stampOf, with wall-clock-apply, uses this node's clock instead of the
// leader's stamp, so nodes that apply the same log diverge.
func stampOf(t int64) int64 {
	if plantedBug == "wall-clock-apply" {
		return wallClock().UnixNano()
	}
	return t
}

// keepOldState, with restore-keeps-state, keeps the leases of the old state
// that the restored snapshot no longer holds.
func keepOldState(old, restored *state) {
	if plantedBug != "restore-keeps-state" || old == nil {
		return
	}
	for id, ll := range old.leases {
		if _, ok := restored.leases[id]; !ok {
			restored.addLease(ll)
		}
	}
}

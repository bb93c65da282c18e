//go:build !chaosbugs

package fsm

// The chaos suite proves its checker catches real bugs by planting them
// (planted_on.go, built only with -tags chaosbugs). In every other build
// these switches are constant and the compiler removes the planted code.
const bugSkipSeatCheck = false

// stampOf is the time Apply uses for a command: its leader stamp.
func stampOf(t int64) int64 { return t }

// keepOldState would merge a restored snapshot into the old state.
func keepOldState(old, restored *state) {}

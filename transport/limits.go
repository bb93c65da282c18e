package transport

import (
	"strconv"
	"time"
)

// Upper bounds on the durations and times a request may carry. The node
// turns seconds and hours into int64 nanoseconds and times into Unix
// nanoseconds; past these bounds that arithmetic overflows and a lease or
// license silently gets a nonsense deadline (the fuzz tests hold the handlers to it).
// They sit far above any real use.
const (
	maxTTLSeconds  = 10 * 365 * 24 * 60 * 60 // ten years
	maxBorrowHours = 10 * 365 * 24           // ten years
)

// Unix nanoseconds in an int64 reach from 1677 to 2262; an expiry at or
// before the epoch would read as 0, "never expires".
var (
	earliestExpiry = time.Unix(0, 0).UTC()
	latestExpiry   = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// checkSeconds refuses a duration in seconds that is negative, or zero when
// positive is set, or longer than ten years.
func checkSeconds(name string, v int64, positive bool) error {
	switch {
	case positive && v <= 0:
		return invalid(name + " must be positive")
	case v < 0:
		return invalid(name + " must not be negative")
	case v > maxTTLSeconds:
		return invalid(name + " must be at most " + strconv.Itoa(maxTTLSeconds) + " (ten years)")
	}
	return nil
}

func checkBorrowHours(v int64) error {
	if v < 0 {
		return invalid("max_borrow_hours must not be negative")
	}
	if v > maxBorrowHours {
		return invalid("max_borrow_hours must be at most " + strconv.Itoa(maxBorrowHours) + " (ten years)")
	}
	return nil
}

func checkExpiry(t *time.Time) error {
	if t != nil && (!t.After(earliestExpiry) || !t.Before(latestExpiry)) {
		return invalid("expires_at must be after 1970-01-01 and before 2262-01-01")
	}
	return nil
}

package client

import (
	"sync"
	"time"
)

// Reasons a Validator gives for a feature that may not be used.
const (
	ReasonNoSeat       = "no_seat"       // no Seat of the Validator is for this feature
	ReasonSeatLost     = "seat_lost"     // its Seat lost the lease and is taking a seat back
	ReasonSeatEnded    = "seat_ended"    // its Seat ended: revoked, license refused, or closed
	ReasonTokenExpired = "token_expired" // the last signed token has passed its exp
)

// Verdict is a Validator's answer about one feature.
type Verdict struct {
	Valid bool
	// Reason is empty when Valid, else one of the Reason constants.
	Reason string
	// Err is the Seat's error behind seat_lost and seat_ended (nil after
	// Close).
	Err error
	// LeaseID and ExpiresAt are those of the signed token the answer rests
	// on; ExpiresAt is the token's exp (whole seconds).
	LeaseID   string
	ExpiresAt time.Time
}

// Validator answers "may this app use feature X now?" from memory, in well
// under a microsecond and without a lock shared with the network, so it can
// sit on an application's hot path.
//
// What it trusts is the last signed answer: the lease token of a Seat for
// that feature, from its checkout or latest heartbeat, verified against the
// cluster's keys when it arrived. The Seats refresh it in the background,
// heartbeating every third of the TTL. A feature is valid while one of its
// Seats holds its lease and that token's exp is still ahead by the local
// clock: a token past its exp is not valid even while its Seat, still
// retrying heartbeats, has not declared the lease lost. An unsigned
// validate answer is not used: a proxy or a fake server could forge it.
//
// The Validator does not own its Seats: Close them yourself.
type Validator struct {
	mu    sync.RWMutex
	seats map[string][]*Seat // by the feature each Seat checked out
	now   func() time.Time   // time.Now; tests move it
}

// NewValidator returns a Validator over seats; Add more later.
func NewValidator(seats ...*Seat) *Validator {
	v := &Validator{seats: map[string][]*Seat{}, now: time.Now}
	for _, s := range seats {
		v.Add(s)
	}
	return v
}

// Add makes s answer for the feature it checked out.
func (v *Validator) Add(s *Seat) {
	v.mu.Lock()
	defer v.mu.Unlock()
	f := s.req.Feature
	v.seats[f] = append(v.seats[f], s)
}

// Valid reports whether feature may be used now.
func (v *Validator) Valid(feature string) bool { return v.Check(feature).Valid }

// Check is Valid with the reason. With several Seats for a feature, one
// valid Seat makes it valid; otherwise the first Seat's reason is given.
func (v *Validator) Check(feature string) Verdict {
	v.mu.RLock()
	seats := v.seats[feature]
	v.mu.RUnlock()
	if len(seats) == 0 {
		return Verdict{Reason: ReasonNoSeat}
	}
	now := v.now()
	var first Verdict
	for i, s := range seats {
		vd := verdictOf(s.view.Load(), feature, now)
		if vd.Valid {
			return vd
		}
		if i == 0 {
			first = vd
		}
	}
	return first
}

func verdictOf(sv *seatView, feature string, now time.Time) Verdict {
	vd := Verdict{LeaseID: sv.claims.Subject}
	if sv.claims.ExpiresAt > 0 {
		vd.ExpiresAt = time.Unix(sv.claims.ExpiresAt, 0)
	}
	switch {
	case sv.state == SeatLost:
		vd.Reason, vd.Err = ReasonSeatLost, sv.err
	case sv.state != SeatHeld:
		vd.Reason, vd.Err = ReasonSeatEnded, sv.err
	case sv.claims.Feature != feature:
		vd.Reason = ReasonNoSeat // the signed token speaks of another feature
	case sv.claims.ExpiresAt <= now.Unix():
		// exp is whole seconds: the token is valid while exp > now.
		vd.Reason = ReasonTokenExpired
	default:
		vd.Valid = true
	}
	return vd
}

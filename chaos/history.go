package chaos

// This file is the contract between the workload that records a history
// and the checker that judges it.

// OpKind is what a client asked for.
type OpKind uint8

const (
	OpCheckout  OpKind = iota + 1 // take a seat in a pool
	OpCheckin                     // give a lease back
	OpHeartbeat                   // extend a lease
	OpCount                       // linearizable read of the seats in use
	OpExpire                      // the leader expired a lease (read back from the audit log)
)

// Outcome is how an operation ended.
type Outcome uint8

const (
	OutcomeOK      Outcome = iota + 1 // 200: checkout got LeaseID; heartbeat/checkin accepted; count read Count
	OutcomeFull                       // checkout refused with 409 no_seats_available
	OutcomeGone                       // heartbeat refused with 410 lease_expired (or 404)
	OutcomeUnknown                    // timeout or cut connection: it may or may not have happened
	OutcomeFailed                     // a definite refusal that changed nothing (503, 400, ...)
)

// Op is one operation of one client, or one expiry read back from the
// audit log. Times are Unix nanoseconds on this machine's clock, which the
// nodes share (they run here too), so leader-stamped audit times and client
// times are comparable.
type Op struct {
	Client    int    // workload client id; -1 for expiries
	Pool      string // license id: histories are checked per pool
	Kind      OpKind
	RequestID string // checkout: the request id (retries reuse it)
	Holder    string // checkout: the unique holder machine, findable in the audit log
	LeaseID   string // checkout OK: the lease granted; checkin/heartbeat/expire: the lease
	Outcome   Outcome
	Count     int   // count OK: seats in use the node answered
	ExpiresAt int64 // checkout/heartbeat OK: the expires_at promised to the client
	Call      int64 // invocation time
	Return    int64 // completion time; for OutcomeUnknown the time the client gave up
	Node      int   // node index the request was sent to
}

// History is everything one run recorded.
type History struct {
	// Seats is the seat count of every pool (the "cad" feature of that
	// license).
	Seats map[string]int
	Ops   []Op
}

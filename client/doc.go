// Package client is the Go SDK of Tally: a cluster-aware HTTP client for
// desktop applications (check a floating seat out, keep it with heartbeats,
// give it back, validate a license) and for admin tools (products, policies,
// licenses, leases, audit, cluster operations).
//
// # Nodes and failover
//
// A Client is given every node's address. Any node answers any request
// (followers forward writes to the leader), so the client does not track the
// leader: it starts with the address that last answered and, when a node
// cannot be reached or answers 503 (no leader yet), moves on to the next one.
// Node pins a client to one address, for questions addressed to one node
// such as its Status.
//
// # Retries
//
// One request loop serves every method. Between attempts it waits 50 ms,
// doubling up to 1 s, with jitter, and never less than a node's Retry-After
// before asking that node again. It gives up when Config.RetryFor (15 s by
// default) is spent or the context ends; each attempt is bounded by
// Config.RequestTimeout (5 s).
//
//   - Requests that are safe to repeat retry on any transport error (dial
//     failure, reset, timeout) and on 503: reads, heartbeats, checkins, and
//     checkouts, which carry a request_id (a random UUID unless the caller
//     set one) that stays the same on every retry, so the cluster answers a
//     retry with the original lease instead of taking a second seat.
//   - Admin creates and changes retry only when the node provably did not
//     process them: the connection was never made, or it answered 503 (but
//     not 503 timeout, which may come after the write was proposed). A reset
//     or timeout after sending is returned to the caller.
//
// When a node answered, the error is an *api.Error, so
// errors.Is(err, api.ErrNoSeats) and friends work; a 503 carries its
// Retry-After in api.Error.RetryAfter. When a call gives up after trying
// several nodes, the error is a *NodesError naming each node's last
// failure; errors.Is and errors.As see the latest *api.Error a node sent
// first (with quorum lost, one node's no_leader rather than the others'
// connection refused). A node that cannot speak what its address says
// (https:// to a plain HTTP node, a TLS handshake that fails) is not asked
// again within the call.
//
// # Seats
//
// AcquireSeat checks a seat out and returns a Seat that holds it until
// Close: it heartbeats every third of the time left on the lease, through
// whichever node answers, so a leader failover or a dead node costs only
// retries. Every answer's token is verified against the cluster's keys
// (VerifyToken: GET /v1/keys, fetched once and again when a token names a
// new key id, as after a failover); an answer that does not verify renews
// nothing. A Seat is in one of three states, reported in order on Events
// and to an OnSeatChange callback:
//
//   - SeatHeld: it holds a lease with a verified token.
//   - SeatLost: the lease expired without a successful heartbeat (or the
//     cluster no longer knows it). The Seat takes a seat back by itself:
//     first by heartbeating the old lease, which the cluster may have kept
//     (a new leader re-arms every lease), then with a new checkout under a
//     new request id, waiting while every seat is taken. It becomes
//     SeatHeld again.
//   - SeatEnded: for good. The lease ended before its expires_at, which only
//     a revoke or a checkin does (the cluster never expires a lease early),
//     or the license is suspended, revoked, expired or lost the feature; or
//     Close was called. The app should stop using the feature; retaking the
//     seat at once would undo an admin's revoke.
//
// WaitForSeat makes AcquireSeat wait, bounded by its ctx, while every seat
// is taken. Retries of one checkout reuse its request id, so a retry never
// takes a second seat.
//
// # Validator
//
// A Validator answers Valid(feature) from the Seats' last verified tokens,
// without a lock shared with the network, so it can guard an app's hot
// path. A token past its exp is not valid even if its Seat is still
// retrying; see Validator for why it trusts tokens and not the validate
// endpoint.
//
//	c, err := client.New(client.Config{Addrs: []string{"n1:7101", "n2:7101", "n3:7101"}})
//	if err != nil {
//		return err
//	}
//	seat, err := c.AcquireSeat(ctx, api.CheckoutRequest{LicenseKey: key, Feature: "cad"}, client.WaitForSeat())
//	if err != nil {
//		return err // no seat before ctx ended, license refused, or token forged
//	}
//	defer seat.Close(context.Background())
//	v := client.NewValidator(seat)
//	go func() {
//		for ev := range seat.Events() {
//			log.Printf("seat %s (lease %s): %v", ev.State, ev.Lease.ID, ev.Err)
//		}
//	}()
//	if v.Valid("cad") { // on every use, from memory
//		render()
//	}
//
// # Offline checks
//
// OfflineVerifier checks a lease token or a license file on this machine
// alone: signature against saved public keys (LoadKeySet, KeySetOf), exp
// and nbf, the machine lock against MachineFingerprint, and, with a
// token.TimeFloor, that the clock was not turned back. A refusal is an
// *OfflineError whose Reason names it and which errors.Is matches against
// the token package's sentinels. See docs/offline.md.
package client

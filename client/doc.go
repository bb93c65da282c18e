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
// Retry-After in api.Error.RetryAfter.
//
// # Seats
//
// AcquireSeat checks a seat out and heartbeats it every TTL/3, retrying
// transient failures until the lease's expires_at. Lost reports once when the
// lease is gone (revoked, license suspended, or expired without a successful
// heartbeat); Close stops the heartbeats and checks the seat in.
//
//	c, err := client.New(client.Config{Addrs: []string{"n1:7101", "n2:7101", "n3:7101"}})
//	if err != nil {
//		return err
//	}
//	seat, err := c.AcquireSeat(ctx, api.CheckoutRequest{
//		LicenseKey: key, Feature: "cad", Holder: api.Holder{Machine: host, User: user},
//	})
//	if errors.Is(err, api.ErrNoSeats) {
//		return errors.New("all seats are taken, try later")
//	}
//	defer seat.Close(context.Background())
//	go func() {
//		if err, ok := <-seat.Lost(); ok { // revoked, suspended, or unreachable past expires_at
//			stopWork(err)
//		}
//	}()
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

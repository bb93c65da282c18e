// Package transport is Tally's network edge: the HTTP API v1 handlers and
// routing, forwarding of leader-only requests, and the Raft stream layer.
//
// # Design
//
// Handlers decode and check the request, call the Backend (the node) and
// write the answer; they hold no cluster logic. When the Backend answers
// *NotLeaderError the handler does not retry or redirect: forward() replays
// the already-read request body to the leader's HTTP address and copies the
// answer back, so a client never needs to know who leads. A forwarded
// request carries the X-Tally-Forwarded header; a node that receives one
// and is not the leader answers 503 no_leader instead of forwarding again,
// so a leadership change mid-flight costs one client retry, never a loop.
//
// Reads are never forwarded: a stale read answers from the local state
// machine, a linearizable one fetches the leader's read index and then
// answers locally too. `tally audit verify` relies on this to read each
// node's own copy of the audit chain.
//
// The snapshot upload (PUT /v1/cluster/snapshot, restore.go) is the one
// body that is not JSON and not read into memory: it is spooled to a
// temporary file, capped at MaxSnapshotBytes, and forward() sends that file
// to the leader, so a follower forwards a restore like any other write.
//
// Every other body is capped at MaxBodyBytes (413 too_large), must be exactly one
// JSON value, and durations and times must fit the node's int64
// nanoseconds (limits.go). Fuzz tests (fuzz_test.go) hold every decoded
// body to this: no panic, never a 5xx, always a coded 4xx. Bodies are
// read into pooled buffers that serve the next request once this one is
// answered; a forwarded body's buffer is never pooled again, because the
// HTTP client may still be sending it after forward() returns. Admin and cluster
// endpoints need the bearer token, compared in constant time; client
// endpoints carry the license key in the body and an unknown key is 401,
// like a wrong token, so keys cannot be probed. Every 401 carries a
// WWW-Authenticate challenge: Bearer for the token, License-Key for a key.
//
// A path with an empty, "." or ".." segment is 404 before routing: the
// mux would otherwise route its cleaned form (a 307 to another endpoint,
// or a 405 naming another route's method).
//
// The Raft stream layer is a plain TCP listener behind raft.StreamLayer so
// that TLS can be added here later without touching the node.
package transport

// Package token signs and verifies the lease tokens Tally hands out with
// every checkout and heartbeat answer, and the license files it exports for
// offline use.
//
// # Why it exists
//
// A desktop client must be able to prove it holds a seat without reaching
// the cluster: on a laptop that has left the building, during a borrow of
// several days, or on an air-gapped machine. So each answer carries a token
// signed with the cluster's Ed25519 key, and the client checks it offline
// against the public keys it fetched earlier from GET /v1/keys. The server
// never needs to see the token again to trust it, and no client can mint or
// stretch one.
//
// # Format
//
// A token is a compact JWS (RFC 7515) carrying a JWT claim set: three
// base64url parts without padding, "header.payload.signature". The header is
// always {"alg":"EdDSA","typ":"JWT","kid":"..."}; EdDSA over Ed25519 is
// RFC 8037. GET /v1/keys serves the public keys as a JWKS (RFC 7517), so any
// JWT library that supports EdDSA can verify a Tally token; this package is
// only the dependency-free implementation that Tally itself uses.
//
// # Key ids
//
// A key's id is derived from the key, never configured: the first 16
// characters of base64url(sha256(public key)), without padding (KeyIDOf).
// Two nodes holding the same key therefore agree on its id, and a rotated
// key gets a new id without anyone choosing one.
//
// # Verification is strict
//
// Verify accepts exactly one algorithm, "EdDSA", whatever the header says,
// so "none" tokens and the HS256-with-the-public-key-as-secret confusion are
// refused (ErrBadAlgorithm). Base64 is decoded strictly (no padding, no
// whitespace, no stray bits), so a signed token has exactly one accepted
// spelling. Every failure wraps one of the sentinel errors (ErrMalformed,
// ErrBadAlgorithm, ErrUnknownKey, ErrBadSignature, ErrExpired,
// ErrNotYetValid) for errors.Is, and no input makes Verify panic.
//
// # License files and the clock
//
// A license file (license.go) is a compact JWS like a lease token, with typ
// "tally-license+jwt" where a lease token has "JWT", and claims that say
// what a license grants (product, customer, policy, features with seats),
// until when (exp, required) and optionally on which machine (mach, a
// fingerprint). Verify and VerifyLicense each insist on their own typ, so
// one key signs both kinds and neither passes for the other (ErrWrongType).
// On disk it may carry '#' comment lines for people; only the token line
// is trusted. A locked file on another machine is ErrWrongMachine.
//
// exp means little on a machine whose clock can be turned back. TimeFloor
// (clock.go) keeps the latest trusted time seen in a small file and refuses
// a clock earlier than it by more than a tolerance (ErrClockRolledBack).
//
// The package imports nothing of Tally's, so the SDK can use it alone.
package token

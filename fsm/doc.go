// Package fsm is Tally's entitlement state machine: products, policies,
// licenses, leases (checked-out seats), signing keys and the audit chain,
// changed only by Raft log entries through Apply.
//
// It exists so that every node of a cluster holds the same entitlements
// and can answer "is this license valid?" and "how many seats are taken?"
// from memory, while a seat is only ever granted by a command every node
// applies in the same order.
//
// # DESIGN
//
// Purity. Apply reads no clock, no randomness, no network and no disk. Time
// arrives in each command (Time, Unix nanoseconds stamped by the leader);
// expiry, windows and audit times all derive from it. Same log, same state,
// byte for byte: Hash is the sha256 of the canonical snapshot encoding, and
// equal hashes prove it. Maps are never iterated in Apply without sorting,
// unless the result is order-independent (RotateKeys takes the maximum key
// epoch over a map).
//
// Commands. A log entry is [type byte][version byte][msgpack body]
// (Encode). Type numbers are never reused and body fields are only ever
// added (msgpack skips unknown fields, zero values fill missing ones), so
// old logs replay after upgrades. When what Apply does for an existing
// command changes, its body version goes up and Apply keeps the old
// behaviour for entries of the old version: every command is at version 1
// except Checkout, at 4 (at 1 only "no seats" is audited; from 2 every
// refusal of a known license is; from 3 it keeps the usage counters; from
// 4 a lease's ExpiresAt and BorrowedUntil are capped at the license's
// ExpiresAt). Encode writes the current version. A version
// of 0 or past the current one, a body that does not decode, or an
// unknown type panics: continuing would let this node's state diverge. A type with IgnoreUnknownFlag (0x80) set that this
// build does not know is skipped (Apply returns nil) so advisory commands
// can be added without a lockstep upgrade. Domain answers ("no seats",
// "suspended") are Results carrying a Refusal, never errors or panics.
// Dispatch is a table built in New, one small applyX per command.
//
// Exactly once. A checkout's RequestID is remembered per license with the
// lease it produced, for RequestWindow (1 h) of log time and at most
// MaxRequestsPerLicense (10,000) ids per license, oldest (by Time, then
// apply order) forgotten first. Forgetting happens at the start of every
// Apply, driven by that command's Time, so all nodes forget at the same log
// position. A retry inside the window gets the original lease (Retried) and
// takes no seat and writes no audit record; if that lease has since ended
// the retry is refused with lease_expired. Ended lease ids are remembered
// the same way for EndedWindow (1 h) so that a heartbeat or checkin can tell
// 410 (ended) from 404 (never seen), and a lease id is never reused.
//
// Seats. A lease occupies a seat key chosen by the policy's seat rule:
// "process" (default) the lease itself, "machine" the holder's machine,
// "user" the holder's user (or machine when the user is empty). Leases with
// the same seat key on one (license, feature) share one seat. Per (license,
// feature) the state keeps seat key -> live lease count, so a checkout is
// O(1) and in-use is the map's size. The seat key is stored with the lease
// (and in snapshots) because a later policy update may change the rule.
// Policies are referenced, never copied: an update applies to every license
// at once. Lowering seats below the seats in use ends no lease; it refuses
// new seats until use falls under the limit. Features with Seats < 0 are
// entitled but not counted (their use is still tracked and reported).
//
// Overrides (overrides.go). A license may carry its own seat counts for
// some features and its own lease TTL (Overrides, set at CreateLicense or
// by UpdateLicense, audited license.updated); they replace the policy's
// for that license alone, and the policy still governs the rest. Seat
// overrides are a list sorted by feature name, not a map, so that their
// encoding is the same on every node. A policy Duration gives a license
// created without an expiry one at creation Time + Duration; it is read
// once, so changing it changes no existing license.
//
// Usage counters (usage.go). Per (license, feature): checkouts granted,
// denied, and the peak of seats in use with its time, counted by Checkout
// entries of version 3 on (older entries replay without counting). A
// denial counts only under a feature of the license's policy, so made-up
// feature names cannot grow the state.
//
// Expiry. Live leases sit in a B-tree ordered by (ExpiresAt, LeaseID);
// ExpiringBefore reads the due ones in O(k log n) (tests and tools use it).
// The leader does not: it finds due leases in its own in-memory lessor
// (node package, lessor.popDue), whose deadlines heartbeats move without
// Raft, and proposes ExpireLeases for them. ExpiresAt is the replicated
// deadline (checkout, then CheckpointLeases, which only
// ever moves it later). ExpireLeases ends only leases whose stored deadline
// is <= the command's Time: a lease never ends before its promised time.
//
// Lease limit. No lease outlives its license: from Checkout version 4 a
// lease's deadline is capped at the license's expiry (0: none), and
// LeaseTimers gives the leader that expiry as each lease's Limit (derived
// from the license, not stored with the lease), so the leader's lessor
// caps heartbeats, re-arms and checkpoints there too. Leases checked out
// at older versions keep the deadline they were promised.
//
// Borrowing. A checkout with BorrowHours (up to the policy's
// MaxBorrowHours; 0 forbids it: borrow_not_allowed) stores the borrow end
// as both BorrowedUntil and ExpiresAt, and keeps the heartbeat TTL as TTL,
// so the leader's re-arm max(stored, now+TTL) can only keep or extend it
// (up to the license's expiry: a borrow ends with its license at the latest).
// Its lease.checkout record carries "borrow hours=N until=T" as detail.
//
// Signing keys. The state holds public keys only, each with its node id
// and key epoch. RotateKeys bumps the epoch; nodes make fresh private keys
// when they apply it (node package). RetireKey marks a key of an older
// epoch retired (it leaves the JWKS); a key of the current epoch is
// key_in_use. New fields of keys, leases and meta are omitempty, so a
// state that never rotated or borrowed still hashes as it did in v1.
//
// Audit. Every license event is a record appended in the same Apply as the
// change (a refused checkout of a known license is lease.denied, its detail
// starting with the refusal code; a missed heartbeat is the lease.expired
// of its lease, since heartbeats never reach the log): Index (previous + 1, from 1), Time (the command's), PrevHash (the
// previous Hash, "" for the first) and Hash = hex(sha256(bytes of PrevHash
// || canonical record)). The canonical record is a msgpack array in fixed
// order [index, time, type, license_id, lease_id, feature, holder (nil or
// [machine, user, hostname, process]), detail, prev_hash], written field by
// field so that fields added to AuditRecord never change old hashes.
// VerifyLink checks one link and VerifyChain a run of them; `tally audit
// verify` uses VerifyLink too, so there is one definition of a valid link.
//
// The audit log (auditlog.go). All records are kept in memory, in a
// compact append-only store rather than a []AuditRecord: at the scale
// target (1.1M records) the slice, its hex hashes and a Holder per record
// cost about 280 MB and a GC scan of millions of pointers. A record is a
// 56-byte entry (time, the hash as [32]byte, and the type, license id and
// feature as indexes into an intern table of at most 1M strings, beyond
// which they are stored inline) plus its variable part (lease id, holder,
// detail as uvarint-length strings) in a byte arena. Index and PrevHash
// are not stored: the chain starts at 1 without gaps, and PrevHash is the
// previous entry's hash. Entries and arena sit in chunks of 4096 records
// (fewer when an arena would pass 1 GiB); a full chunk is never written or
// copied again, so growing the log never re-copies old records, and chunks
// hold no pointers. An AuditRecord is built only for a reader (Audit)
// from the stored form. The canonical form is written by hand, byte for
// byte what msgpack's Encoder writes, so a checkout's Apply keeps its
// Holder on the stack.
//
// A snapshot takes a view of the log under the read lock: a copy of the
// chunk headers (a few hundred) and the intern table's length. Apply goes
// on appending while the view is written: appends touch only entries and
// arena bytes past the view's end, or new arrays, never what the view can
// reach. The audit section is written from the stored form in exactly the
// bytes the reflection encoding of AuditRecord gave (a map of ten fields,
// fixed-width index and time, hex hashes), and read back with a decoder
// that reuses its buffers. Restore refuses an audit section that does not
// link (an index out of sequence, a prev_hash that is not the previous
// hash, a hash that is not 64 lowercase hex digits): no snapshot Tally
// wrote is like that, and the compact form could not keep it.
//
// Snapshots. "TALLYSNAP", a version byte (1), then msgpack sections in
// fixed order: products, policies, licenses, leases (with seat keys),
// request windows, ended leases, audit, keys, usage (only when there are
// counters, so a state without any hashes as before), meta (applied index,
// request sequence, key epoch, term of the last operator restore; always
// last). Each is a name, an array header and items in sorted order,
// streamed to the sink with one encoder, never built as one buffer. Taking
// a snapshot copies values and pointers to immutable leases under the read
// lock; encoding runs outside it. Restore rejects other versions, builds a
// whole new state with every index and swaps it in under one lock, and
// refuses a snapshot behind the state by (restore term, applied index). CheckUpload and Upload.Reader prepare an operator's saved
// snapshot for raft's user restore (restore.go says why).
// testdata/ holds golden snapshots and logs, one pair per generation (v1;
// v2 with Checkout at version 2; v3 with Checkout at version 3; v4, whose
// history runs every command at its current version), that must keep loading and replaying to their
// hashes; they are never rewritten.
package fsm

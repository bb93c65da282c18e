// Package node is a running Tally server: Raft with raft-boltdb/v2 stores,
// memberlist discovery, the leader's lease duties, and the read and write
// paths the HTTP layer calls.
//
// # Design
//
// One write path. Every change goes through apply(), which only the ready
// leader runs; elsewhere it answers *transport.NotLeaderError and the
// transport's forward() replays the request to the leader. The leader stamps
// each command with its clock (Unix ns) and draws every id and key before
// proposing, because the FSM may read neither clock nor randomness.
//
// Leadership. monitorLeadership starts leaderLoop when Raft says this node
// won. leaderLoop first waits for a Barrier, so the FSM holds every entry of
// earlier terms, then establishLeadership re-arms every lease and opens the
// node to leader-only requests (leaderReady). Losing leadership closes them
// again and drops the in-memory deadlines (revokeLeadership).
//
// Leases. Checkout, checkin and expiry are Raft commands; a heartbeat is
// not. The lessor keeps the leader's deadlines in a B-tree ordered by time:
// a heartbeat moves one deadline (O(log n)), the reaper pops the due ones
// (O(k log n)) and proposes ExpireLeases. A popped lease is marked expiring
// until that command is applied, so a late heartbeat cannot renew a lease
// that is being expired. The FSM refuses to expire a lease before its stored
// deadline, and the stored deadline is never later than the lessor's, so a
// lease never expires before the expires_at last acknowledged to its holder.
// A new leader re-arms every lease at max(stored, now + TTL): later than
// promised at worst, never earlier. A heartbeat's answer comes from the
// leader's memory, so it is sent only after VerifyLeader confirms a quorum
// still follows this leader; a heartbeat for a lease whose expiry is in
// flight waits for that proposal to be decided. Checkpoints replicate deadlines that
// heartbeats moved, in batches, so the replicated state stays close to the
// leader's memory.
//
// Signing keys. Each node keeps its own private key, one 0600 file per key
// epoch in its data dir (signing.go); only public keys enter Raft. A node
// that applies a RotateKeys (or restores a snapshot past one) makes the key
// of the new epoch in keyLoop and deletes older private keys. A leader
// registers its current key before it serves: establishLeadership makes
// and registers it and sets leaderReady under one lock, and a rotation on
// the leader registers the new key before swapping it in. So every token
// is signed with a key the JWKS already holds.
//
// Reads. Stale reads are served from the local FSM and report the applied
// index and the time since the leader was last heard from. Linearizable
// reads use a read index (Raft §6.4): the leader notes its last applied
// command, confirms leadership with VerifyLeader, and the serving node waits
// until its own FSM has applied that index. A follower fetches the index
// from the leader over HTTP, so linearizable reads scale across nodes. The
// index is the leader's last applied command, not its commit index, because
// Raft's no-op and barrier entries never reach the FSM and a follower would
// wait for them forever.
//
// Snapshot restore (restore.go). An uploaded snapshot is decoded whole,
// then handed to raft's user restore with its meta section rewritten (see
// fsm/restore.go): the leader asks raft for an index restoreIndexGap past
// its log and writes that index, and its term, into the snapshot, so the
// applied index keeps counting raft entries. The leader clears leaderReady for the
// restore, so no write races it, and then the leader loop runs
// establishLeadership again: leases re-armed with a full TTL, its signing
// key registered in the restored state before it signs again. Meanwhile the
// reaper and checkpoints skip their ticks (applyDuty fails at once rather
// than wait for a leader as a client's write would), so the leader loop is
// free to take the restore's request to re-establish.
//
// Discovery (discovery.go, bootstrap.go). Each node gossips its id, HTTP
// and Raft addresses, its --bootstrap-expect and whether it has Raft state,
// and updates that metadata as soon as it gains state. With
// --bootstrap-expect N, a node bootstraps Raft with exactly the N alive
// servers advertising the same N, and only when no member ever advertised
// state (dead and left ones included), no more than N such servers are
// alive (cutting the list could give nodes different configurations), and
// every alive peer confirms over GET /v1/status that it has none (gossip
// metadata can lag). Founders that pass together compute the same
// configuration, which Raft accepts. Known members' gossip addresses are
// saved in the data dir (peers.json) and joined on restart besides --join.
// The leader adds alive gossip members missing from the configuration as
// voters; it never removes dead or left ones by itself (it logs them; an
// operator runs `tally operator raft remove-peer`), because gossip cannot
// tell a crashed node from a partitioned one and a node that left may be
// restarting. A node sets "leaving" in its metadata before it leaves, since
// memberlist reports a leave and a death alike.
package node

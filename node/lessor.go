package node

import (
	"context"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/tallyhq/tally/fsm"
)

// lessor holds the leader's in-memory lease deadlines. Heartbeats move a
// deadline here only, never through Raft; the reaper pops due leases and
// proposes their expiry; checkpoints replicate deadlines that moved far.
// It lives only while this node is the ready leader.
//
// No deadline it holds passes its lease's limit, the license's expiry
// (capped): every path that sets one (add, renew, rearm) is given the
// limit by its caller, so the lessor keeps no per-lease copy of it.
type lessor struct {
	mu    sync.Mutex
	byID  map[string]deadline // by value: no object per lease
	order *btree.BTreeG[deadlineKey]
	// expiring holds leases popped by the reaper whose expiry is in flight;
	// a heartbeat for one of them is refused so that a lease is never
	// renewed and expired at once.
	expiring map[string]struct{}
}

type deadline struct {
	at     int64 // in-memory deadline, Unix ns
	stored int64 // deadline as replicated in the FSM
}

type deadlineKey struct {
	at int64
	id string
}

func lessDeadline(a, b deadlineKey) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.id < b.id
}

func newLessor() *lessor {
	return &lessor{
		byID:     map[string]deadline{},
		order:    btree.NewG(32, lessDeadline),
		expiring: map[string]struct{}{},
	}
}

// reset forgets everything (leadership lost or about to be re-armed).
func (l *lessor) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byID = map[string]deadline{}
	l.order.Clear(false)
	l.expiring = map[string]struct{}{}
}

// rearm gives every lease a deadline of at least now + its TTL, capped at
// its limit: after a failover a lease may expire later than promised,
// never earlier, and never after its license.
func (l *lessor) rearm(leases []fsm.LeaseTimer, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ls := range leases {
		l.setLocked(ls.ID, capped(max(ls.ExpiresAt, now+ls.TTL), ls.Limit, ls.ExpiresAt), ls.ExpiresAt)
	}
}

// add arms a lease just checked out; limit is its license's expiry.
func (l *lessor) add(ls fsm.Lease, limit int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, gone := l.expiring[ls.ID]; gone {
		return
	}
	at := capped(ls.ExpiresAt, limit, ls.ExpiresAt)
	if d, ok := l.byID[ls.ID]; ok && d.at >= at {
		return // a retried checkout: keep the later deadline
	}
	l.setLocked(ls.ID, at, ls.ExpiresAt)
}

// capped is deadline at held to limit (a license expiry, 0 for none), but
// never below stored, the replicated deadline: the FSM ends no lease
// before that (ExpireLeases), and a lease checked out before Checkout
// version 4 may store, and have been promised, a later one.
func capped(at, limit, stored int64) int64 {
	if limit != 0 && at > limit {
		return max(limit, stored)
	}
	return at
}

func (l *lessor) setLocked(id string, at, stored int64) {
	if d, ok := l.byID[id]; ok {
		l.order.Delete(deadlineKey{d.at, id})
	}
	l.byID[id] = deadline{at: at, stored: stored}
	l.order.ReplaceOrInsert(deadlineKey{at, id})
}

// renew moves a lease's deadline to now + TTL, capped at limit (its
// license's expiry, 0 for none), and returns it. A lease the lessor does
// not know is armed from the FSM's copy; a lease whose expiry is in flight
// cannot be renewed.
func (l *lessor) renew(ls fsm.Lease, limit, now int64) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, gone := l.expiring[ls.ID]; gone {
		return 0, false
	}
	stored := ls.ExpiresAt
	if d, ok := l.byID[ls.ID]; ok {
		stored = d.stored
	}
	at := capped(max(now+ls.TTL, stored), limit, stored)
	l.setLocked(ls.ID, at, stored)
	return at, true
}

// waitSettled waits until no expiry of the lease is in flight.
func (l *lessor) waitSettled(ctx context.Context, id string, timeout time.Duration) error {
	settled := func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		_, busy := l.expiring[id]
		return !busy
	}
	// Nearly every heartbeat finds its lease settled: it needs no timer.
	if settled() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return waitFor(ctx, 5*time.Millisecond, settled)
}

// deadline returns the in-memory deadline of a lease.
func (l *lessor) deadline(id string) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.byID[id]
	if !ok {
		return 0, false
	}
	return d.at, true
}

// popDue removes up to limit leases whose deadline is at or before now and
// marks them expiring. Cost: O(k log n) for k due leases.
func (l *lessor) popDue(now int64, limit int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var due []deadlineKey
	l.order.Ascend(func(k deadlineKey) bool {
		if k.at > now || len(due) >= limit {
			return false
		}
		due = append(due, k)
		return true
	})
	ids := make([]string, len(due))
	for i, k := range due {
		l.order.Delete(k)
		delete(l.byID, k.id)
		l.expiring[k.id] = struct{}{}
		ids[i] = k.id
	}
	return ids
}

// forget drops leases that ended (checkin, revoke, expiry).
func (l *lessor) forget(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if d, ok := l.byID[id]; ok {
			l.order.Delete(deadlineKey{d.at, id})
			delete(l.byID, id)
		}
		delete(l.expiring, id)
	}
}

// unexpire puts back leases that are still live after an expiry proposal
// (it failed, or the FSM holds a later deadline) so that a later tick tries
// again, at the FSM's deadline at the earliest.
func (l *lessor) unexpire(leases []fsm.Lease, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ls := range leases {
		if _, ok := l.expiring[ls.ID]; !ok {
			continue
		}
		delete(l.expiring, ls.ID)
		l.setLocked(ls.ID, max(ls.ExpiresAt, now), ls.ExpiresAt)
	}
}

// drifted lists deadlines that moved more than minGain past what the FSM
// stores, for a checkpoint.
func (l *lessor) drifted(minGain int64, limit int) []fsm.LeaseDeadline {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []fsm.LeaseDeadline
	for id, d := range l.byID {
		if d.at-d.stored > minGain {
			out = append(out, fsm.LeaseDeadline{LeaseID: id, ExpiresAt: d.at})
			if len(out) >= limit {
				break
			}
		}
	}
	return out
}

// checkpointed records that the FSM now stores these deadlines.
func (l *lessor) checkpointed(ds []fsm.LeaseDeadline) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range ds {
		if d, ok := l.byID[c.LeaseID]; ok && c.ExpiresAt > d.stored {
			d.stored = c.ExpiresAt
			l.byID[c.LeaseID] = d
		}
	}
}

// len is the number of armed leases.
func (l *lessor) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byID)
}

package node

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
)

// restoreIndexGap is how far past the leader's last log index the restore
// is placed. Raft puts a user restore at max(its last index, the index
// asked for) + 1; asking for a gap past anything still queued for the log
// when the restore starts lets the node know that index in advance and
// write it into the snapshot as the applied index (fsm/restore.go). Were
// the gap ever overrun, the restore still installs; only the applied index
// then lags the raft index until the next command.
const restoreIndexGap = 1 << 16

// restoreTimeout bounds the waits around a restore: raft taking the
// request, and the leader loop re-establishing leadership afterwards. The
// restore itself runs as long as it needs.
const restoreTimeout = 30 * time.Second

// RestoreSnapshot replaces the whole replicated state with a snapshot saved
// by WriteSnapshot, through raft's user restore: the leader restores it and
// every follower receives it by InstallSnapshot. The upload is decoded in
// full first; a bad file is refused with invalid_request and changes
// nothing. While the restore runs the leader serves no leader-only
// requests (they get 503 no_leader and retry); afterwards it re-arms every
// lease and re-registers its signing key as after an election.
func (n *Node) RestoreSnapshot(ctx context.Context, src io.ReaderAt, size int64) (*api.SnapshotRestore, error) {
	if !n.leaderReady.Load() {
		return nil, n.notLeader()
	}
	start := time.Now()
	up, err := fsm.CheckUpload(src, size)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidRequest, err.Error())
	}
	n.restoreMu.Lock()
	defer n.restoreMu.Unlock()
	if !n.leaderReady.Swap(false) {
		return nil, n.notLeader()
	}
	at := max(n.raft.LastIndex(), n.fsm.AppliedIndex()) + restoreIndexGap
	// The term orders restores (fsm/restore.go); max() in case the state
	// holds a restore of a later term than this node last saw.
	term := max(n.raft.CurrentTerm(), n.fsm.RestoreTerm())
	r, rsize, err := up.Reader(at, term)
	if err == nil {
		meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: at - 1, Size: rsize}
		err = n.raft.Restore(meta, r, restoreTimeout)
	}
	// Whatever happened, the leader loop reopens service: after a failed
	// restore the state is the old one and re-arming it is harmless.
	if rerr := n.reestablish(); err == nil {
		err = rerr
	}
	if err != nil {
		n.log.Warn("snapshot restore failed", "err", err)
		return nil, n.restoreError(err)
	}
	n.log.Info("restored a snapshot", "index", at, "saved_index", up.Applied(), "licenses", up.Licenses,
		"leases", up.Leases, "took", time.Since(start))
	return &api.SnapshotRestore{
		Index: at, SavedIndex: up.Applied(), Bytes: size,
		Products: up.Products, Policies: up.Policies, Licenses: up.Licenses, Leases: up.Leases,
		AuditRecords: up.AuditRecords, SigningKeys: up.Keys,
		DurationMS: time.Since(start).Milliseconds(),
	}, nil
}

// reestablish asks the leader loop to establish leadership again and waits
// for it. A node that lost leadership meanwhile has no leader loop: the next
// leader establishes its own.
func (n *Node) reestablish() error {
	done := make(chan struct{})
	timer := time.NewTimer(restoreTimeout)
	defer timer.Stop()
	select {
	case n.reestablishCh <- done:
	case <-n.shutdownCh:
		return errShutdown
	case <-timer.C:
		return errLeadershipLost
	}
	select {
	case <-done:
	case <-n.shutdownCh:
		return errShutdown
	case <-timer.C:
		return errLeadershipLost
	}
	if !n.leaderReady.Load() {
		return errLeadershipLost
	}
	return nil
}

var errLeadershipLost = errors.New("leadership was lost during the restore")

// restoreError says what a failed restore means for the admin.
func (n *Node) restoreError(err error) error {
	switch {
	case errors.Is(err, errLeadershipLost), errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return &api.Error{Code: api.CodeNoLeader, RetryAfter: 1,
			Message: "leadership changed during the restore; check tally status on every node, then restore again"}
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return &api.Error{Code: api.CodeTimeout, RetryAfter: 1, Message: "the leader is busy; retry the restore"}
	case errors.Is(err, errShutdown), errors.Is(err, raft.ErrRaftShutdown):
		return &api.Error{Code: api.CodeNoLeader, RetryAfter: 1, Message: "the leader is shutting down; retry the restore"}
	}
	// Raft's other refusals (a configuration change in flight) are plain
	// errors; the admin endpoint may show them.
	return &api.Error{Code: api.CodeInternal, Message: "the restore failed: " + err.Error()}
}

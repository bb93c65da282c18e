package transport

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tallyhq/tally/api"
)

// restoreBackend records the snapshot it is given, or answers notLeader.
type restoreBackend struct {
	Backend
	leaderAddr string // set: not the leader, forward there
	got        []byte
}

func (b *restoreBackend) RestoreSnapshot(_ context.Context, src io.ReaderAt, size int64) (*api.SnapshotRestore, error) {
	if b.leaderAddr != "" {
		return nil, &NotLeaderError{LeaderAddr: b.leaderAddr}
	}
	b.got = make([]byte, size)
	if _, err := src.ReadAt(b.got, 0); err != nil {
		return nil, err
	}
	return &api.SnapshotRestore{Bytes: size}, nil
}

// The upload bypasses the 1 MiB cap up to its own, and a follower forwards
// all of it to the leader.
func TestRestoreUploadIsSpooledAndForwarded(t *testing.T) {
	leader := &restoreBackend{}
	leaderSrv, _ := newTestServer(t, leader)
	follower := &restoreBackend{leaderAddr: leaderSrv.URL}
	followerSrv, _ := newTestServer(t, follower)

	big := strings.Repeat("s", 3*MaxBodyBytes)
	r := send(t, http.MethodPut, followerSrv.URL+"/v1/cluster/snapshot", token, big, "Content-Type", "application/octet-stream")
	if r.status != http.StatusOK || !bytes.Equal(leader.got, []byte(big)) {
		t.Fatalf("forwarded upload: status %d, leader got %d of %d bytes (%s)", r.status, len(leader.got), len(big), r.body)
	}
	if follower.got != nil {
		t.Fatal("the follower restored")
	}

	defer func(old int64) { snapshotLimit = old }(snapshotLimit)
	snapshotLimit = MaxBodyBytes
	for _, tc := range []struct {
		name, auth, body string
		status           int
		code             string
	}{
		{"over the cap", token, big, http.StatusRequestEntityTooLarge, api.CodeTooLarge},
		{"empty", token, "", http.StatusBadRequest, api.CodeInvalidRequest},
		{"no token", "", "x", http.StatusUnauthorized, api.CodeUnauthorized},
	} {
		r := send(t, http.MethodPut, leaderSrv.URL+"/v1/cluster/snapshot", tc.auth, tc.body)
		if r.status != tc.status || r.err.Code != tc.code {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, r.status, r.err.Code, tc.status, tc.code)
		}
	}
	if r := send(t, http.MethodPost, leaderSrv.URL+"/v1/cluster/snapshot", token, ""); r.header.Get("Allow") != "GET, PUT" {
		t.Errorf("Allow on the snapshot path: %q", r.header.Get("Allow"))
	}
}

package node

import (
	"context"
	"strconv"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
)

// The signing-key admin calls: list, rotate, retire.

// SigningKeys lists every registered key with its status. On the leader
// "signing" is exactly its current key; elsewhere it is the current
// epoch's key of the node Raft names as leader.
func (n *Node) SigningKeys(ctx context.Context, consistency string) (*api.SigningKeyList, error) {
	if err := n.read(ctx, consistency); err != nil {
		return nil, err
	}
	epoch := n.fsm.KeyEpoch()
	own := ""
	if n.leaderReady.Load() {
		own = n.signingKey().signer.KeyID()
	}
	_, leaderID := n.raft.LeaderWithID()
	out := &api.SigningKeyList{Epoch: epoch, Keys: []api.SigningKey{}}
	for _, k := range n.fsm.Keys() {
		status := api.KeyStatusVerifying
		switch {
		case k.Retired():
			status = api.KeyStatusRetired
		case own != "" && k.KID == own:
			status = api.KeyStatusSigning
		case own == "" && k.Epoch == epoch && k.NodeID != "" && k.NodeID == string(leaderID):
			status = api.KeyStatusSigning
		}
		out.Keys = append(out.Keys, toSigningKey(k, status))
	}
	return out, nil
}

// RotateKeys starts a new key epoch and, before answering, makes this
// leader's key for it and registers it, so every token signed after the
// answer carries the new kid. Keys of older epochs keep verifying until
// they are retired.
func (n *Node) RotateKeys(ctx context.Context) (*api.RotateKeysResponse, error) {
	res, err := n.apply(fsm.CmdRotateKeys, &fsm.RotateKeys{Time: n.now()})
	if err != nil {
		return nil, err
	}
	if err := n.syncKey(); err != nil {
		// The rotation is committed; keyLoop keeps trying to switch. Tell
		// the admin rather than report a kid the leader does not use.
		n.log.Warn("rotated, but switching to the new signing key failed", "epoch", res.KeyEpoch, "err", err)
		return nil, &api.Error{Code: api.CodeTimeout, RetryAfter: 1,
			Message: "the key epoch is now " + itoa(res.KeyEpoch) + " but the leader has not switched keys yet; check tally keys list"}
	}
	return &api.RotateKeysResponse{Epoch: res.KeyEpoch, KID: n.signingKey().signer.KeyID()}, nil
}

// RetireKey retires a key of an older epoch: it leaves GET /v1/keys and
// tokens it signed stop verifying.
func (n *Node) RetireKey(ctx context.Context, kid string) (*api.SigningKey, error) {
	if !n.leaderReady.Load() {
		return nil, n.notLeader()
	}
	// The FSM refuses keys of the current epoch; this also covers a leader
	// still signing with an older key because its switch failed.
	if n.signingKey().signer.KeyID() == kid {
		return nil, api.Errorf(api.CodeKeyInUse, "key "+kid+" signs the leader's tokens")
	}
	res, err := n.apply(fsm.CmdRetireKey, &fsm.RetireKey{KID: kid, Time: n.now()})
	if err != nil {
		return nil, err
	}
	out := toSigningKey(*res.Key, api.KeyStatusRetired)
	return &out, nil
}

func toSigningKey(k fsm.SigningKey, status string) api.SigningKey {
	out := api.SigningKey{KID: k.KID, NodeID: k.NodeID, Epoch: k.Epoch, AddedAt: toTime(k.AddedAt), Status: status}
	if k.RetiredAt != 0 {
		t := toTime(k.RetiredAt)
		out.RetiredAt = &t
	}
	return out
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

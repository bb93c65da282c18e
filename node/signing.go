package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/fsm"
	"github.com/tallyhq/tally/token"
)

// This node's token-signing key. The private key lives in the data dir
// only, one 0600 file per key epoch: signing-key.pem for epoch 0 (the name
// it always had) and signing-key-<epoch>.pem after rotations. It is never
// replicated, logged or put in an answer; the replicated state holds the
// public key (docs/security.md says why).

// nodeKey is the key this node signs with and the epoch it was made for.
// It is immutable; the node swaps whole values.
type nodeKey struct {
	signer *token.Signer
	epoch  uint64
}

// keyring owns the key files of one data dir.
type keyring struct {
	dir string
	// mu serializes key changes: making the key of a new epoch, registering
	// it, and switching to it happen as one step.
	mu  sync.Mutex
	cur atomic.Pointer[nodeKey]
}

const keyFilePrefix = "signing-key"

func keyPath(dir string, epoch uint64) string {
	if epoch == 0 {
		return filepath.Join(dir, keyFilePrefix+".pem")
	}
	return filepath.Join(dir, keyFilePrefix+"-"+strconv.FormatUint(epoch, 10)+".pem")
}

// keyFileEpoch parses a key file name; ok is false for any other file.
func keyFileEpoch(name string) (uint64, bool) {
	if name == keyFilePrefix+".pem" {
		return 0, true
	}
	s, ok := strings.CutPrefix(name, keyFilePrefix+"-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".pem")
	if !ok {
		return 0, false
	}
	e, err := strconv.ParseUint(s, 10, 64)
	return e, err == nil && e > 0
}

// keyEpochs lists the epochs of the key files in dir.
func keyEpochs(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	var out []uint64
	for _, e := range entries {
		if ep, ok := keyFileEpoch(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, ep)
		}
	}
	return out, nil
}

// openKeyring loads the newest key file in dir, creating the epoch 0 key
// on a fresh data dir.
func openKeyring(dir string) (*keyring, error) {
	epochs, err := keyEpochs(dir)
	if err != nil {
		return nil, err
	}
	var latest uint64
	for _, e := range epochs {
		latest = max(latest, e)
	}
	k := &keyring{dir: dir}
	nk, err := k.load(latest)
	if err != nil {
		return nil, err
	}
	k.cur.Store(nk)
	k.removeBefore(latest)
	return k, nil
}

// load reads, or atomically creates (0600), the key of an epoch.
func (k *keyring) load(epoch uint64) (*nodeKey, error) {
	priv, err := token.LoadOrCreateKey(keyPath(k.dir, epoch))
	if err != nil {
		return nil, fmt.Errorf("signing key of epoch %d: %w", epoch, err)
	}
	return &nodeKey{signer: token.NewSigner(ed25519.PrivateKey(priv)), epoch: epoch}, nil
}

// removeBefore deletes the private keys of older epochs: they never sign
// again, and a key that no longer exists cannot leak from a later copy of
// the data dir. Their public halves stay in the replicated state.
func (k *keyring) removeBefore(epoch uint64) {
	epochs, err := keyEpochs(k.dir)
	if err != nil {
		return
	}
	for _, e := range epochs {
		if e < epoch {
			_ = os.Remove(keyPath(k.dir, e))
		}
	}
}

// signingKey is the key this node signs with now.
func (n *Node) signingKey() *nodeKey { return n.keys.cur.Load() }

// syncKey brings this node's key up to the replicated key epoch: a newer
// epoch gets a fresh key. A leader registers the key before it signs with
// it; a follower switches at once and registers when it leads.
func (n *Node) syncKey() error {
	n.keys.mu.Lock()
	defer n.keys.mu.Unlock()
	return n.syncKeyLocked(n.leaderReady.Load())
}

func (n *Node) syncKeyLocked(leading bool) error {
	cur := n.keys.cur.Load()
	next := cur
	if want := n.fsm.KeyEpoch(); want > cur.epoch {
		nk, err := n.keys.load(want)
		if err != nil {
			return err
		}
		next = nk
		n.log.Info("made the signing key of a new epoch", "epoch", want, "kid", nk.signer.KeyID())
	}
	if leading {
		if k, ok := n.fsm.Key(next.signer.KeyID()); ok && k.Retired() {
			// Not reachable through the API (the current epoch cannot be
			// retired), but a retired key must never sign again, and a
			// leader that refused to serve would stop the cluster: replace
			// it with a fresh key of the same epoch.
			if err := os.Remove(keyPath(n.keys.dir, next.epoch)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("replace retired signing key: %w", err)
			}
			nk, err := n.keys.load(next.epoch)
			if err != nil {
				return err
			}
			n.log.Warn("replaced a retired signing key", "retired_kid", k.KID, "kid", nk.signer.KeyID())
			next = nk
		}
		if err := n.registerKey(next); err != nil {
			return err
		}
	}
	if next != cur {
		n.keys.cur.Store(next)
		n.keys.removeBefore(next.epoch)
	}
	return nil
}

// registerKey proposes k's public key unless the state already holds it
// with this node's id. It bypasses apply's readiness check because
// establishLeadership calls it before the node is ready.
func (n *Node) registerKey(k *nodeKey) error {
	kid := k.signer.KeyID()
	if have, ok := n.fsm.Key(kid); ok && have.NodeID != "" {
		return nil
	}
	now := n.now()
	_, err := n.propose(fsm.CmdRegisterKey, &fsm.RegisterKey{
		Key:  fsm.SigningKey{KID: kid, PublicKey: k.signer.PublicKey(), AddedAt: now, NodeID: n.cfg.NodeID, Epoch: k.epoch},
		Time: now,
	})
	if err != nil {
		return fmt.Errorf("register signing key %s: %w", kid, err)
	}
	return nil
}

// keyLoop makes the key of a new epoch soon after this node applies a
// rotation (or restores a snapshot with one), retrying until it succeeds.
func (n *Node) keyLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-n.keyEpochChanged:
		}
		for {
			err := n.syncKey()
			if err == nil {
				break
			}
			n.log.Warn("switching to the new signing key failed; retrying", "err", err)
			select {
			case <-n.shutdownCh:
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// noteKeyEpoch wakes keyLoop without blocking the FSM.
func (n *Node) noteKeyEpoch() {
	select {
	case n.keyEpochChanged <- struct{}{}:
	default:
	}
}

// establishKey is establishLeadership's key step: make and register the key
// of the current epoch, then open the node to leader-only requests, all
// under the key lock so no token is ever signed with an unregistered key.
func (n *Node) establishKey(ctx context.Context) error {
	for {
		n.keys.mu.Lock()
		err := n.syncKeyLocked(true)
		if err == nil {
			n.leaderReady.Store(true)
		}
		n.keys.mu.Unlock()
		if err == nil {
			return nil
		}
		n.log.Warn("registering the signing key failed", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

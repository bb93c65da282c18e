package fsm

import "strconv"

// This file applies the signing-key commands: register, rotate, retire.
// The state holds public keys only; each node keeps its private key in its
// own data dir (see docs/security.md).

func (s *state) applyRegisterKey(c *RegisterKey) *Result {
	if c.Key.KID == "" || len(c.Key.PublicKey) == 0 {
		return refuse(CodeInvalidRequest, "key id and public key are required")
	}
	if old, ok := s.keys[c.Key.KID]; ok {
		// Keys registered before node ids were recorded learn theirs the
		// next time their node leads; nothing else about a key changes.
		if old.NodeID == "" && c.Key.NodeID != "" {
			old.NodeID = c.Key.NodeID
			s.keys[old.KID] = old
		}
		return &Result{}
	}
	k := cloneKey(c.Key)
	k.AddedAt = c.Time
	k.RetiredAt = 0
	s.keys[k.KID] = k
	return &Result{}
}

// applyRotateKeys starts the next key epoch. Nodes notice the new epoch
// after applying it and make their keys; the state only counts.
func (s *state) applyRotateKeys(c *RotateKeys) *Result {
	// After a restored backup, nodes keep signing with keys of later
	// epochs than the state's and register them; the next epoch must be
	// past those, or the rotation would change no node's key.
	for _, k := range s.keys {
		s.keyEpoch = max(s.keyEpoch, k.Epoch)
	}
	s.keyEpoch++
	s.appendAudit(c.Time, AuditRecord{Type: AuditKeysRotated, Detail: "epoch=" + strconv.FormatUint(s.keyEpoch, 10)})
	return &Result{KeyEpoch: s.keyEpoch}
}

// applyRetireKey retires a key of an older epoch. The record stays (listed
// as retired) so that a retired key id is never taken for an unknown one.
func (s *state) applyRetireKey(c *RetireKey) *Result {
	k, ok := s.keys[c.KID]
	if !ok {
		return refuse(CodeNotFound, "signing key %q not found", c.KID)
	}
	if !k.Retired() {
		// >= rather than ==: a key registered for a later epoch than the
		// state knows (a node that outlived a restored backup) is in use too.
		if k.Epoch >= s.keyEpoch {
			return refuse(CodeKeyInUse, "key %q belongs to the current epoch %d; rotate first, wait for its tokens to expire, then retire it",
				k.KID, s.keyEpoch)
		}
		k.RetiredAt = c.Time
		s.keys[k.KID] = k
		s.appendAudit(c.Time, AuditRecord{Type: AuditKeyRetired,
			Detail: "kid=" + k.KID + " epoch=" + strconv.FormatUint(k.Epoch, 10)})
	}
	out := cloneKey(k)
	return &Result{Key: &out, KeyEpoch: s.keyEpoch}
}

// KeyEpoch is the current signing-key epoch (0 until the first rotation).
func (f *FSM) KeyEpoch() (e uint64) {
	f.read(func(s *state) { e = s.keyEpoch })
	return e
}

// Key returns one signing key, retired or not.
func (f *FSM) Key(kid string) (k SigningKey, ok bool) {
	f.read(func(s *state) { k, ok = s.keys[kid] })
	return cloneKey(k), ok
}

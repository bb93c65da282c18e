package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/vmihailenco/msgpack/v5"
)

// appendAudit links rec onto the chain: Index and PrevHash from the head,
// Time from the command, Hash over both. It runs inside the Apply that made
// the change, so an event is never recorded late or lost.
func (s *state) appendAudit(now int64, rec AuditRecord) {
	rec.Index = 1
	rec.PrevHash = ""
	if n := len(s.audit); n > 0 {
		rec.Index = s.audit[n-1].Index + 1
		rec.PrevHash = s.audit[n-1].Hash
	}
	rec.Time = now
	rec.Hash = ""
	h, err := recordHash(&rec)
	if err != nil {
		// Only a corrupt PrevHash can fail, and PrevHash is our own output.
		panic(fmt.Sprintf("fsm: audit chain: %v", err))
	}
	rec.Hash = h
	s.audit = append(s.audit, rec)
}

// recordHash is hex(sha256(prevHashBytes || canonical(rec without Hash))).
func recordHash(rec *AuditRecord) (string, error) {
	prev, err := hex.DecodeString(rec.PrevHash)
	if err != nil {
		return "", fmt.Errorf("record %d: prev_hash is not hex: %w", rec.Index, err)
	}
	h := sha256.New()
	h.Write(prev)
	if err := writeCanonicalRecord(h, rec); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeCanonicalRecord writes the v1 canonical form of a record: a msgpack
// array in a fixed field order, Hash left out. It is spelled out field by
// field (not the struct's reflection encoding) so that a field added to
// AuditRecord later cannot change the hash of records already written.
func writeCanonicalRecord(w hash.Hash, r *AuditRecord) error {
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(w)
	var err error
	do := func(e error) {
		if err == nil {
			err = e
		}
	}
	do(enc.EncodeArrayLen(9))
	do(enc.EncodeUint(r.Index))
	do(enc.EncodeInt(r.Time))
	do(enc.EncodeString(r.Type))
	do(enc.EncodeString(r.LicenseID))
	do(enc.EncodeString(r.LeaseID))
	do(enc.EncodeString(r.Feature))
	do(encodeHolder(enc, r.Holder))
	do(enc.EncodeString(r.Detail))
	do(enc.EncodeString(r.PrevHash))
	return err
}

func encodeHolder(enc *msgpack.Encoder, h *Holder) error {
	if h == nil {
		return enc.EncodeNil()
	}
	if err := enc.EncodeArrayLen(4); err != nil {
		return err
	}
	for _, s := range []string{h.Machine, h.User, h.Hostname, h.Process} {
		if err := enc.EncodeString(s); err != nil {
			return err
		}
	}
	return nil
}

// VerifyChain recomputes every record's hash and checks that each links to
// the one before it. records must be consecutive; the first may start
// anywhere, but if its Index is 1 its PrevHash must be empty. It reports the
// first broken link.
func VerifyChain(records []AuditRecord) error {
	for i := range records {
		r := &records[i]
		if i == 0 {
			if r.Index == 1 && r.PrevHash != "" {
				return fmt.Errorf("audit record 1: prev_hash must be empty")
			}
		} else {
			p := &records[i-1]
			if r.Index != p.Index+1 {
				return fmt.Errorf("audit record %d: follows record %d, want %d", r.Index, p.Index, p.Index+1)
			}
			if r.PrevHash != p.Hash {
				return fmt.Errorf("audit record %d: prev_hash does not match hash of record %d", r.Index, p.Index)
			}
		}
		c := *r
		c.Hash = ""
		want, err := recordHash(&c)
		if err != nil {
			return fmt.Errorf("audit record %d: %w", r.Index, err)
		}
		if r.Hash != want {
			return fmt.Errorf("audit record %d: hash does not match its contents", r.Index)
		}
	}
	return nil
}

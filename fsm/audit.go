package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// appendAudit links rec onto the chain: Index and PrevHash from the head,
// Time from the command, Hash over both. It runs inside the Apply that made
// the change, so an event is never recorded late or lost.
//
// The record's fields are copied out of rec (a Holder value, not the
// pointer), so the caller's Holder can stay on its stack.
func (s *state) appendAudit(now int64, rec AuditRecord) {
	rec.Time = now
	f := fieldsOf(&rec)
	var prev []byte
	last, ok := s.audit.lastHash()
	if ok {
		prev = last[:]
	}
	push(&s.audit, &f, chainHash(prev, s.audit.n+1, &f))
}

// hashInputs are reused buffers for the record hash: every audited command
// on every node hashes one record, so its allocations count.
var hashInputs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// chainHash is sha256(prev || canonical(record)) with prev_hash hex(prev):
// the hash of record index with fields f, appended after one whose hash
// is prev (nil for the first record).
func chainHash(prev []byte, index uint64, f *auditFields[string]) [sha256.Size]byte {
	in := hashInputs.Get().(*bytes.Buffer)
	defer hashInputs.Put(in)
	in.Reset()
	in.Write(prev)
	var prevHex [2 * sha256.Size]byte
	n := hex.Encode(prevHex[:], prev)
	if err := writeCanonicalRecord(in, index, f, prevHex[:n]); err != nil {
		// Writing to a bytes.Buffer cannot fail; an encoding failure is a bug.
		panic(fmt.Sprintf("fsm: audit chain: %v", err))
	}
	return sha256.Sum256(in.Bytes())
}

// recordHash is hex(sha256(prevHashBytes || canonical(rec without Hash))),
// for a record as read back, whose PrevHash may be damaged.
func recordHash(rec *AuditRecord) (string, error) {
	in := hashInputs.Get().(*bytes.Buffer)
	defer hashInputs.Put(in)
	in.Reset()
	var prev [sha256.Size]byte
	if len(rec.PrevHash) == hex.EncodedLen(sha256.Size) {
		if _, err := hex.Decode(prev[:], []byte(rec.PrevHash)); err != nil {
			return "", fmt.Errorf("record %d: prev_hash is not hex: %w", rec.Index, err)
		}
		in.Write(prev[:])
	} else { // the chain's first record, or a damaged one being verified
		b, err := hex.DecodeString(rec.PrevHash)
		if err != nil {
			return "", fmt.Errorf("record %d: prev_hash is not hex: %w", rec.Index, err)
		}
		in.Write(b)
	}
	f := fieldsOf(rec)
	if err := writeCanonicalRecord(in, rec.Index, &f, rec.PrevHash); err != nil {
		return "", err
	}
	sum := sha256.Sum256(in.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// writeCanonicalRecord writes the v1 canonical form of a record: a msgpack
// array in a fixed field order, Hash left out. It is spelled out field by
// field (not the struct's reflection encoding) so that a field added to
// AuditRecord later cannot change the hash of records already written.
//
// prevHex is the prev_hash field, so that appending can pass the hex it
// holds in a local array rather than allocate a string for it.
func writeCanonicalRecord[S ~string | ~[]byte](w *bytes.Buffer, index uint64, f *auditFields[string], prevHex S) error {
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
	do(enc.EncodeUint(index))
	do(enc.EncodeInt(f.time))
	do(enc.EncodeString(f.typ))
	do(enc.EncodeString(f.license))
	do(enc.EncodeString(f.lease))
	do(enc.EncodeString(f.feature))
	do(encodeHolder(enc, f))
	do(enc.EncodeString(f.detail))
	if err == nil {
		// The encoder writes straight through to w, so the last field can
		// be appended to w in the encoder's string form.
		w.Write(appendMsgpackStr(w.AvailableBuffer(), prevHex))
	}
	return err
}

func encodeHolder(enc *msgpack.Encoder, f *auditFields[string]) error {
	if !f.hasHolder {
		return enc.EncodeNil()
	}
	if err := enc.EncodeArrayLen(4); err != nil {
		return err
	}
	for _, s := range f.holder {
		if err := enc.EncodeString(s); err != nil {
			return err
		}
	}
	return nil
}

// VerifyLink checks one link of the chain: rec's hash matches its contents
// and, when prev (the record before it) is given, rec follows prev by index
// and by prev_hash. With prev nil a record with Index 1 must have an empty
// prev_hash. It is the one definition of a valid link, shared by
// VerifyChain and by `tally audit verify`, which checks chains record by
// record as it pages through them.
func VerifyLink(prev, rec *AuditRecord) error {
	if prev == nil {
		if rec.Index == 1 && rec.PrevHash != "" {
			return fmt.Errorf("audit record 1: prev_hash must be empty")
		}
	} else {
		if rec.Index != prev.Index+1 {
			return fmt.Errorf("audit record %d: follows record %d, want %d", rec.Index, prev.Index, prev.Index+1)
		}
		if rec.PrevHash != prev.Hash {
			return fmt.Errorf("audit record %d: prev_hash does not match hash of record %d", rec.Index, prev.Index)
		}
	}
	c := *rec
	c.Hash = ""
	want, err := recordHash(&c)
	if err != nil {
		return fmt.Errorf("audit record %d: %w", rec.Index, err)
	}
	if rec.Hash != want {
		return fmt.Errorf("audit record %d: hash does not match its contents", rec.Index)
	}
	return nil
}

// VerifyChain checks that records are consecutive links (VerifyLink). The
// first may start anywhere, but if its Index is 1 its PrevHash must be
// empty. It reports the first broken link.
func VerifyChain(records []AuditRecord) error {
	for i := range records {
		var prev *AuditRecord
		if i > 0 {
			prev = &records[i-1]
		}
		if err := VerifyLink(prev, &records[i]); err != nil {
			return err
		}
	}
	return nil
}

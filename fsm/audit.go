package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
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
	in.Write(appendCanonicalRecord(in.AvailableBuffer(), index, f, prevHex[:n]))
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
	in.Write(appendCanonicalRecord(in.AvailableBuffer(), rec.Index, &f, rec.PrevHash))
	sum := sha256.Sum256(in.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// appendCanonicalRecord appends the v1 canonical form of a record: a
// msgpack array in a fixed field order, Hash left out, each value in the
// form msgpack's Encoder gives it (EncodeUint, EncodeInt, EncodeString,
// EncodeNil, EncodeArrayLen). It is spelled out field by field (not the
// struct's reflection encoding) so that a field added to AuditRecord later
// cannot change the hash of records already written; and by hand, not
// through an Encoder, so that nothing of f reaches the heap (an Encoder's
// writer is an interface) and Apply's records cost no allocation here.
// TestCanonicalRecordEncoding holds it to the Encoder's output.
//
// prevHex is the prev_hash field, so that appending can pass the hex it
// holds in a local array rather than allocate a string for it.
func appendCanonicalRecord[S ~string | ~[]byte](b []byte, index uint64, f *auditFields[string], prevHex S) []byte {
	b = append(b, 0x90|9) // fixarray of 9
	b = appendMsgpackUint(b, index)
	b = appendMsgpackInt(b, f.time)
	b = appendMsgpackStr(b, f.typ)
	b = appendMsgpackStr(b, f.license)
	b = appendMsgpackStr(b, f.lease)
	b = appendMsgpackStr(b, f.feature)
	if f.hasHolder {
		b = append(b, 0x90|4)
		for _, s := range f.holder {
			b = appendMsgpackStr(b, s)
		}
	} else {
		b = append(b, 0xc0)
	}
	b = appendMsgpackStr(b, f.detail)
	return appendMsgpackStr(b, prevHex)
}

// appendMsgpackUint appends n as Encoder.EncodeUint writes it: the
// shortest unsigned form.
func appendMsgpackUint(b []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
}

// appendMsgpackInt appends n as Encoder.EncodeInt writes it: unsigned
// forms for n >= 0, else the shortest signed form.
func appendMsgpackInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendMsgpackUint(b, uint64(n))
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
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

package fsm

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The audit section of a snapshot holds each record as msgpack's
// reflection encoding of AuditRecord wrote it in v1: a map of the ten
// fields in struct order, Index and Time as fixed-width integers, hashes
// as hex strings. The compact log writes those bytes itself, field by
// field from the stored form, so a snapshot costs no AuditRecord per
// record; TestAuditSnapshotEncoding holds it to the reflection encoding.

// writeAuditSection writes the audit section of v.
func writeAuditSection(enc *msgpack.Encoder, v *auditView) error {
	if err := enc.EncodeString(secAudit); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(int(v.n)); err != nil {
		return err
	}
	// The encoder keeps no buffer: what it wrote is already in w.
	w := enc.Writer()
	var buf []byte
	var err error
	v.each(0, func(r *storedRecord) bool {
		buf = appendSnapRecord(buf[:0], r)
		_, err = w.Write(buf)
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("fsm: snapshot section %s: %w", secAudit, err)
	}
	return nil
}

// appendSnapRecord appends r in its snapshot form.
func appendSnapRecord(b []byte, r *storedRecord) []byte {
	b = append(b, 0x80|10) // fixmap, 10 fields
	b = append(b, 0xa1, 'i', 0xcf)
	b = binary.BigEndian.AppendUint64(b, r.index)
	b = append(b, 0xa1, 't', 0xd3)
	b = binary.BigEndian.AppendUint64(b, uint64(r.time))
	b = appendText(append(b, 0xa2, 't', 'y'), &r.typ)
	b = appendText(append(b, 0xa3, 'l', 'i', 'c'), &r.license)
	b = appendText(append(b, 0xa5, 'l', 'e', 'a', 's', 'e'), &r.lease)
	b = appendText(append(b, 0xa1, 'f'), &r.feature)
	b = append(b, 0xa1, 'h')
	if h := r.holder; h == nil {
		b = append(b, 0xc0)
	} else {
		b = append(b, 0x80|4)
		for i, key := range [...]byte{'m', 'u', 'h', 'p'} {
			b = appendText(append(b, 0xa1, key), &h[i])
		}
	}
	b = appendText(append(b, 0xa1, 'd'), &r.detail)
	b = append(b, 0xa4, 'p', 'r', 'e', 'v')
	if r.prev == nil {
		b = append(b, 0xa0)
	} else {
		b = hex.AppendEncode(append(b, 0xd9, 64), r.prev[:])
	}
	b = append(b, 0xa4, 'h', 'a', 's', 'h', 0xd9, 64)
	return hex.AppendEncode(b, r.hash[:])
}

func appendText(b []byte, t *text) []byte {
	if t.inArena {
		return appendMsgpackStr(b, t.arena)
	}
	return appendMsgpackStr(b, t.interned)
}

// appendMsgpackStr appends s as msgpack's Encoder.EncodeString writes it.
func appendMsgpackStr[S ~string | ~[]byte](b []byte, s S) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 1<<8:
		b = append(b, 0xd9, byte(n))
	case n < 1<<16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

var errAuditLink = errors.New("audit chain does not link")

// auditReader decodes snapshot records into buffers it reuses, so reading
// a million records allocates only what the log keeps. It reads what the
// reflection decoder of AuditRecord would: fields in any order, unknown
// ones skipped, missing ones zero.
type auditReader struct {
	index      uint64
	f          auditFields[[]byte]
	prev, hash []byte
	key        []byte
}

func (rd *auditReader) read(dec *msgpack.Decoder) error {
	rd.index = 0
	rd.f.time, rd.f.hasHolder = 0, false
	for _, b := range []*[]byte{&rd.f.typ, &rd.f.license, &rd.f.lease, &rd.f.feature, &rd.f.detail} {
		*b = (*b)[:0]
	}
	rd.prev, rd.hash = rd.prev[:0], rd.hash[:0]
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for i := 0; i < n && err == nil; i++ {
		if err = dec.Decode(&rd.key); err != nil {
			return err
		}
		switch string(rd.key) {
		case "i":
			rd.index, err = dec.DecodeUint64()
		case "t":
			rd.f.time, err = dec.DecodeInt64()
		case "ty":
			err = dec.Decode(&rd.f.typ)
		case "lic":
			err = dec.Decode(&rd.f.license)
		case "lease":
			err = dec.Decode(&rd.f.lease)
		case "f":
			err = dec.Decode(&rd.f.feature)
		case "h":
			err = rd.readHolder(dec)
		case "d":
			err = dec.Decode(&rd.f.detail)
		case "prev":
			err = dec.Decode(&rd.prev)
		case "hash":
			err = dec.Decode(&rd.hash)
		default:
			err = dec.Skip()
		}
	}
	return err
}

func (rd *auditReader) readHolder(dec *msgpack.Decoder) error {
	rd.f.hasHolder = false
	if c, err := dec.PeekCode(); err != nil {
		return err
	} else if c == msgpcode.Nil {
		return dec.DecodeNil()
	}
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for i := range rd.f.holder {
		rd.f.holder[i] = rd.f.holder[i][:0]
	}
	rd.f.hasHolder = true
	for i := 0; i < n && err == nil; i++ {
		if err = dec.Decode(&rd.key); err != nil {
			return err
		}
		switch string(rd.key) {
		case "m":
			err = dec.Decode(&rd.f.holder[0])
		case "u":
			err = dec.Decode(&rd.f.holder[1])
		case "h":
			err = dec.Decode(&rd.f.holder[2])
		case "p":
			err = dec.Decode(&rd.f.holder[3])
		default:
			err = dec.Skip()
		}
	}
	return err
}

// restore reads the next record of a snapshot and appends it. The log
// stores no PrevHash or Index, so a record must follow its predecessor
// exactly: Index one more, PrevHash its Hash ("" for record 1), and Hash
// 64 lowercase hex digits. Every snapshot Tally wrote is such a chain; one
// that is not was damaged, and is refused rather than half kept. The hash
// itself is not recomputed (VerifyChain does that).
func (l *auditLog) restore(dec *msgpack.Decoder, rd *auditReader) error {
	if err := rd.read(dec); err != nil {
		return err
	}
	if rd.index != l.n+1 {
		return fmt.Errorf("%w: record %d where %d belongs", errAuditLink, rd.index, l.n+1)
	}
	var hash [32]byte
	if err := decodeHashHex(&hash, rd.hash); err != nil {
		return fmt.Errorf("%w: record %d: hash: %v", errAuditLink, rd.index, err)
	}
	last, ok := l.lastHash()
	if !ok && len(rd.prev) != 0 {
		return fmt.Errorf("%w: record 1 has a prev_hash", errAuditLink)
	}
	if ok {
		var prev [32]byte
		if decodeHashHex(&prev, rd.prev) != nil || prev != last {
			return fmt.Errorf("%w: record %d: prev_hash is not the hash of record %d", errAuditLink, rd.index, rd.index-1)
		}
	}
	push(l, &rd.f, hash)
	return nil
}

// decodeHashHex decodes a hash as appendAudit writes it: 64 lowercase hex
// digits (hex.Decode would also take upper case, which would not encode
// back to the same bytes).
func decodeHashHex(dst *[32]byte, s []byte) error {
	if len(s) != hex.EncodedLen(len(dst)) {
		return fmt.Errorf("%d characters, want %d", len(s), hex.EncodedLen(len(dst)))
	}
	for i := range dst {
		hi, ok1 := lowerHexDigit(s[2*i])
		lo, ok2 := lowerHexDigit(s[2*i+1])
		if !ok1 || !ok2 {
			return errors.New("not lowercase hex")
		}
		dst[i] = hi<<4 | lo
	}
	return nil
}

func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

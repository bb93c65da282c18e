package fsm

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"sort"
	"strings"
)

// auditLog is the audit chain in memory, append-only and compact. At the
// scale target (1.1M records) a record as an AuditRecord with two hex
// hashes and its own Holder cost about 280 bytes and 3-6 heap objects; here
// it costs a 56-byte entry and its variable part in a byte arena, and the
// chunks holding them are pointer-free, so the GC never scans them.
//
// Records live in chunks of at most chunkRecs entries. A full chunk is
// never written or copied again; growing the log only adds chunks. Hashes
// are [32]byte; PrevHash is not stored (it is the previous record's hash)
// nor Index (the chain starts at 1 and has no gaps). Type, license id and
// feature repeat across records and are interned in strs; the lease id,
// holder and detail are written into the chunk's arena.
//
// A snapshot reads a view (auditView) taken under the read lock while
// Apply goes on appending: appends write only past the view's end or into
// new arrays, never a byte the view can reach.
type auditLog struct {
	auditView
	ids map[string]uint32 // strs index of each interned string
	// chunkRecs and chunkBytes bound a chunk and maxStrings the intern
	// table; 0 means the defaults. Tests shrink them to cross chunk
	// boundaries and fill the table with a few records.
	chunkRecs, chunkBytes, maxStrings int
}

// auditView is the log up to some record. Its chunks slice is its own
// copy of the chunk headers, so a later append cannot change what it sees.
type auditView struct {
	chunks []auditChunk
	n      uint64   // records
	strs   []string // interned strings; strs[0] is ""
}

// auditChunk holds the records from position first (0-based) on.
type auditChunk struct {
	first uint64
	recs  []auditEntry
	data  []byte // the records' variable parts, each from its entry's off
}

// auditEntry is the fixed part of a record. Type, license and feature are
// strs indexes, or inlineStr when the table was full and the string sits
// in the variable part instead.
type auditEntry struct {
	time                  int64
	hash                  [32]byte
	typ, license, feature uint32
	off                   uint32
}

const (
	defaultChunkRecs = 4096
	// defaultChunkBytes keeps arena offsets far from the uint32 limit.
	defaultChunkBytes = 1 << 30
	// maxAuditStrings bounds the intern table. Only catalog names reach it
	// (event types, license ids, feature names), but a state with more
	// licenses than this still works: the rest are stored inline.
	maxAuditStrings = 1 << 20
	inlineStr       = math.MaxUint32

	partHolder = 1 << 0 // the variable part carries a holder
)

func (l *auditLog) limits() (recs, bytes int) {
	recs, bytes = l.chunkRecs, l.chunkBytes
	if recs <= 0 {
		recs = defaultChunkRecs
	}
	if bytes <= 0 {
		bytes = defaultChunkBytes
	}
	return recs, bytes
}

// intern returns s's id, adding it while the table has room.
func intern[S ~string | ~[]byte](l *auditLog, s S) uint32 {
	if l.ids == nil {
		l.ids = map[string]uint32{"": 0}
		l.strs = append(l.strs, "")
	}
	if id, ok := l.ids[string(s)]; ok {
		return id
	}
	if limit := l.maxStrings; len(l.strs) >= maxAuditStrings || (limit > 0 && len(l.strs) >= limit) {
		return inlineStr
	}
	id := uint32(len(l.strs))
	// A copy: keeping the caller's string would make every string of the
	// record it came from escape, and its Holder with them.
	str := strings.Clone(string(s))
	l.strs = append(l.strs, str)
	l.ids[str] = id
	return id
}

// lastHash is the hash of the newest record; ok is false when empty.
func (v *auditView) lastHash() (h [32]byte, ok bool) {
	if v.n == 0 {
		return h, false
	}
	c := &v.chunks[len(v.chunks)-1]
	return c.recs[len(c.recs)-1].hash, true
}

// auditFields are what a record stores besides its hash: from Apply as
// strings, from a snapshot as bytes the decoder reuses.
type auditFields[S ~string | ~[]byte] struct {
	time                                 int64
	typ, license, lease, feature, detail S
	holder                               [4]S // machine, user, hostname, process
	hasHolder                            bool
}

func fieldsOf(r *AuditRecord) auditFields[string] {
	f := auditFields[string]{time: r.Time, typ: r.Type, license: r.LicenseID, lease: r.LeaseID,
		feature: r.Feature, detail: r.Detail}
	if h := r.Holder; h != nil {
		f.holder, f.hasHolder = [4]string{h.Machine, h.User, h.Hostname, h.Process}, true
	}
	return f
}

// push appends a record with the given hash. The caller has linked it:
// hash covers the previous record's.
func push[S ~string | ~[]byte](l *auditLog, f *auditFields[S], hash [32]byte) {
	e := auditEntry{time: f.time, hash: hash,
		typ: intern(l, f.typ), license: intern(l, f.license), feature: intern(l, f.feature)}
	c := l.tail(partSize(&e, f))
	e.off = uint32(len(c.data))
	c.data = appendPart(c.data, &e, f)
	c.recs = append(c.recs, e)
	l.n++
}

// tail returns the chunk the next record goes into, sealing the current
// one when it is full or the next part would take it past its byte bound.
func (l *auditLog) tail(part int) *auditChunk {
	maxRecs, maxBytes := l.limits()
	if k := len(l.chunks); k > 0 {
		c := &l.chunks[k-1]
		if len(c.recs) < maxRecs && (len(c.recs) == 0 || len(c.data)+part <= maxBytes) {
			return c
		}
	}
	// A new chunk: the entries are allocated at full size, except while
	// the log is small (a test, a dev node), and the arena is sized after
	// the previous chunk's, so neither is normally regrown.
	// (The builtin min is shadowed in this package's tests.)
	recCap, dataCap := maxRecs, 1024
	if k := len(l.chunks); k == 0 {
		if recCap > 16 {
			recCap = 16
		}
	} else {
		prev := len(l.chunks[k-1].data)
		dataCap = prev + prev/8
	}
	if dataCap < part {
		dataCap = part
	} else if dataCap > maxBytes {
		dataCap = maxBytes
	}
	l.chunks = append(l.chunks, auditChunk{first: l.n,
		recs: make([]auditEntry, 0, recCap), data: make([]byte, 0, dataCap)})
	return &l.chunks[len(l.chunks)-1]
}

// view returns the log as it is now, for reading after the lock is
// released. It copies the chunk headers (a few hundred at 1M records).
func (l *auditLog) view() auditView {
	return auditView{chunks: slices.Clone(l.chunks), n: l.n, strs: l.strs[:len(l.strs):len(l.strs)]}
}

// The variable part of a record: a flags byte, then as uvarint-length
// strings the inline ones of type, license and feature, the lease id, the
// holder's four fields when partHolder is set, and the detail.

func partSize[S ~string | ~[]byte](e *auditEntry, f *auditFields[S]) int {
	n := 1 + strSize(f.lease) + strSize(f.detail)
	if e.typ == inlineStr {
		n += strSize(f.typ)
	}
	if e.license == inlineStr {
		n += strSize(f.license)
	}
	if e.feature == inlineStr {
		n += strSize(f.feature)
	}
	if f.hasHolder {
		for _, s := range f.holder {
			n += strSize(s)
		}
	}
	return n
}

func strSize[S ~string | ~[]byte](s S) int { return uvarintLen(uint64(len(s))) + len(s) }

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func appendPart[S ~string | ~[]byte](b []byte, e *auditEntry, f *auditFields[S]) []byte {
	var flags byte
	if f.hasHolder {
		flags |= partHolder
	}
	b = append(b, flags)
	if e.typ == inlineStr {
		b = appendPartStr(b, f.typ)
	}
	if e.license == inlineStr {
		b = appendPartStr(b, f.license)
	}
	if e.feature == inlineStr {
		b = appendPartStr(b, f.feature)
	}
	b = appendPartStr(b, f.lease)
	if f.hasHolder {
		for _, s := range f.holder {
			b = appendPartStr(b, s)
		}
	}
	return appendPartStr(b, f.detail)
}

func appendPartStr[S ~string | ~[]byte](b []byte, s S) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// storedRecord is one record as stored: its text points into the arena
// or the intern table, so it is only valid during the each callback that
// gave it; record() copies it out.
type storedRecord struct {
	index                                uint64
	time                                 int64
	hash, prev                           *[32]byte // prev is nil for record 1
	typ, license, lease, feature, detail text
	holder                               *[4]text // machine, user, hostname, process; nil when none
	holderBuf                            [4]text
}

// text is a string field as stored: bytes in a chunk's arena, or an
// interned string.
type text struct {
	arena    []byte
	interned string
	inArena  bool
}

func (t *text) String() string {
	if t.inArena {
		return string(t.arena)
	}
	return t.interned
}

// record materializes r as an AuditRecord the caller may keep.
func (r *storedRecord) record() AuditRecord {
	out := AuditRecord{
		Index:     r.index,
		Time:      r.time,
		Type:      r.typ.String(),
		LicenseID: r.license.String(),
		LeaseID:   r.lease.String(),
		Feature:   r.feature.String(),
		Detail:    r.detail.String(),
		Hash:      hex.EncodeToString(r.hash[:]),
	}
	if r.prev != nil {
		out.PrevHash = hex.EncodeToString(r.prev[:])
	}
	if h := r.holder; h != nil {
		out.Holder = &Holder{Machine: h[0].String(), User: h[1].String(), Hostname: h[2].String(), Process: h[3].String()}
	}
	return out
}

// each calls fn for the records at positions from, from+1, ... (0-based;
// the record's Index is position+1) until fn returns false or the view
// ends. r is reused between calls.
func (v *auditView) each(from uint64, fn func(r *storedRecord) bool) {
	if from >= v.n {
		return
	}
	k := sort.Search(len(v.chunks), func(i int) bool { return v.chunks[i].first > from }) - 1
	var r storedRecord
	var prev *[32]byte
	if from > 0 {
		prev = v.hashAt(k, from-1)
	}
	for ; k < len(v.chunks); k++ {
		c := &v.chunks[k]
		for j := int(from - c.first); j < len(c.recs); j++ {
			e := &c.recs[j]
			v.decode(&r, e, c.data[e.off:])
			r.index = c.first + uint64(j) + 1
			r.prev = prev
			if !fn(&r) {
				return
			}
			prev = &e.hash
		}
		if k+1 < len(v.chunks) {
			from = v.chunks[k+1].first
		}
	}
}

// hashAt is the hash at position p, which is in chunk k or the one before.
func (v *auditView) hashAt(k int, p uint64) *[32]byte {
	if p < v.chunks[k].first {
		k--
	}
	c := &v.chunks[k]
	return &c.recs[p-c.first].hash
}

func (v *auditView) decode(r *storedRecord, e *auditEntry, part []byte) {
	r.time, r.hash = e.time, &e.hash
	flags := part[0]
	part = part[1:]
	next := func(t *text) {
		n, k := binary.Uvarint(part)
		end := k + int(n)
		*t = text{arena: part[k:end:end], inArena: true}
		part = part[end:]
	}
	field := func(t *text, id uint32) {
		if id == inlineStr {
			next(t)
		} else {
			*t = text{interned: v.strs[id]}
		}
	}
	field(&r.typ, e.typ)
	field(&r.license, e.license)
	field(&r.feature, e.feature)
	next(&r.lease)
	r.holder = nil
	if flags&partHolder != 0 {
		r.holder = &r.holderBuf
		for i := range r.holderBuf {
			next(&r.holderBuf[i])
		}
	}
	next(&r.detail)
}

// records returns up to limit (<= 0: all) records with Index > after.
func (v *auditView) records(after uint64, limit int) []AuditRecord {
	if after >= v.n {
		return nil
	}
	count := v.n - after
	if limit > 0 && uint64(limit) < count {
		count = uint64(limit)
	}
	out := make([]AuditRecord, 0, count)
	v.each(after, func(r *storedRecord) bool {
		out = append(out, r.record())
		return uint64(len(out)) < count
	})
	return out
}

package fsm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// Operator restore: an admin uploads a snapshot saved earlier, and raft's
// user restore (raft.Restore) makes it the state of every node. Raft writes
// the upload into the leader's snapshot store at an index past its log,
// restores the leader's FSM from it and sends it to the followers by
// InstallSnapshot.
//
// Such a snapshot is older than the state the nodes have applied, so the
// guard in Restore against stale installs would refuse it, and raft panics
// when the leader's FSM refuses a user restore. The node therefore never
// hands raft the uploaded bytes as they are: CheckUpload decodes the whole
// upload first, and Upload.Reader yields the same bytes with only the meta
// section re-encoded, carrying
//
//   - RestoreTerm, the leader's Raft term: Restore orders states by
//     (restore term, applied), so the restored state is newer than anything
//     before it, on the leader and on every follower, whatever its own
//     applied index says. A term, not a count: a restore the old leader
//     made alone before losing leadership is still older than the next
//     leader's, so restoring again heals that node; and
//   - Applied, the raft index the node asks raft to give the restore, so the
//     applied index keeps counting raft entries and read indexes and
//     metrics never move backwards.
//
// The pair keeps the stale-install guard whole: within one restore term
// the applied index still only grows (a leader's next restore is placed
// past its log), so a stale replication goroutine's old install is refused
// exactly as before, and an install from before a restore has a lower
// term.

// ErrInvalidSnapshot wraps every reason CheckUpload refuses an upload.
var ErrInvalidSnapshot = errors.New("not a valid Tally snapshot")

// Upload is a snapshot file decoded whole and found sound.
type Upload struct {
	src    io.ReaderAt
	prefix int64 // bytes before the meta section
	meta   snapMeta

	Products, Policies, Licenses, Leases, AuditRecords, Keys int
}

// CheckUpload decodes the size bytes of src as a snapshot, all of it, so
// that a file raft will be given is known to restore. The decoded state
// is dropped; src is read again by Reader.
func CheckUpload(src io.ReaderAt, size int64) (*Upload, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(src, 0, size), 64<<10)
	s, err := readState(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSnapshot, err)
	}
	if _, err := br.Peek(1); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the last section", ErrInvalidSnapshot)
	}
	u := &Upload{
		src:  src,
		meta: snapMeta{Applied: s.applied, RequestSeq: s.requestSeq, KeyEpoch: s.keyEpoch, RestoreTerm: s.restoreTerm},

		Products: len(s.products), Policies: len(s.policies), Licenses: len(s.licenses),
		Leases: len(s.leases), AuditRecords: int(s.audit.n), Keys: len(s.keys),
	}
	// A snapshot Tally wrote is canonical: its meta section encodes back
	// to the same bytes, which locates the section for Reader to replace.
	tail, err := encodeMeta(u.meta)
	if err != nil {
		return nil, err
	}
	u.prefix = size - int64(len(tail))
	have := make([]byte, len(tail))
	if _, err := src.ReadAt(have, u.prefix); err != nil || !bytes.Equal(have, tail) {
		return nil, fmt.Errorf("%w: its meta section is not in canonical form", ErrInvalidSnapshot)
	}
	return u, nil
}

// Applied is the applied index the upload was saved at.
func (u *Upload) Applied() uint64 { return u.meta.Applied }

// Reader yields the upload with its meta section carrying applied and
// term, and the number of bytes it yields.
func (u *Upload) Reader(applied, term uint64) (io.Reader, int64, error) {
	m := u.meta
	m.Applied, m.RestoreTerm = applied, term
	tail, err := encodeMeta(m)
	if err != nil {
		return nil, 0, err
	}
	r := io.MultiReader(io.NewSectionReader(u.src, 0, u.prefix), bytes.NewReader(tail))
	return r, u.prefix + int64(len(tail)), nil
}

// encodeMeta encodes the meta section as capture.write does.
func encodeMeta(m snapMeta) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := writeSection(enc, secMeta, []snapMeta{m}, nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RestoreTerm is the Raft term of the state's last operator restore, 0
// for a state never restored.
func (f *FSM) RestoreTerm() (t uint64) {
	f.read(func(s *state) { t = s.restoreTerm })
	return t
}

// behind says whether the snapshot state s would move cur backwards.
func behind(s, cur *state) bool {
	if s.restoreTerm != cur.restoreTerm {
		return s.restoreTerm < cur.restoreTerm
	}
	return s.applied < cur.applied
}

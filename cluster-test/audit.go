package clustertest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tallyhq/tally/api"
)

// auditPage is how many records one audit read asks for (the server's cap).
const auditPage = 10000

// Audit reads node i's whole audit log with the given consistency ("" is
// the server's default).
func (c *Cluster) Audit(i int, consistency string) ([]api.AuditRecord, error) {
	raws, err := c.auditRaw(i, consistency)
	if err != nil {
		return nil, err
	}
	return decodeAudit(raws)
}

// auditRaw reads node i's whole audit log, each record as the node sent it.
func (c *Cluster) auditRaw(i int, consistency string) ([]json.RawMessage, error) {
	return readAuditRaw(c.reader(i), consistency)
}

// readAuditRaw reads a node's whole audit log through get, page by page.
func readAuditRaw(r nodeReader, consistency string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	var after uint64
	for {
		path := fmt.Sprintf("/v1/audit?after=%d&limit=%d", after, auditPage)
		if consistency != "" {
			path += "&consistency=" + consistency
		}
		var page struct {
			Records []json.RawMessage `json:"records"`
		}
		if err := r.get(path, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Records...)
		if len(page.Records) < auditPage {
			return out, nil
		}
		var last api.AuditRecord
		if err := json.Unmarshal(page.Records[len(page.Records)-1], &last); err != nil {
			return nil, err
		}
		if last.Index <= after {
			return nil, fmt.Errorf("audit paging of %s is stuck at index %d", r.name, after)
		}
		after = last.Index
	}
}

func decodeAudit(raws []json.RawMessage) ([]api.AuditRecord, error) {
	out := make([]api.AuditRecord, len(raws))
	for k, raw := range raws {
		if err := json.Unmarshal(raw, &out[k]); err != nil {
			return nil, fmt.Errorf("audit record #%d: %w", k, err)
		}
	}
	return out, nil
}

// VerifyAuditChain checks a whole audit log as read from a node: indexes run
// 1..n without a gap, record 1 has an empty prev_hash, every prev_hash is
// the hash of the record before, and every hash is
// hex(sha256(prev_hash bytes || canonical record)).
//
// The canonical record is the v1 form fsm/audit.go writes: a msgpack array
// of index, time (Unix ns), type, license_id, lease_id, feature, holder
// (nil or an array of machine, user, hostname, process), detail, prev_hash.
// It is spelled out here again on purpose: records already written must
// keep their hashes whatever the server's code becomes.
func VerifyAuditChain(records []api.AuditRecord) error {
	prev := ""
	for k := range records {
		r := &records[k]
		if want := uint64(k + 1); r.Index != want {
			return fmt.Errorf("audit record #%d has index %d, want %d", k, r.Index, want)
		}
		if r.PrevHash != prev {
			return fmt.Errorf("audit record %d: prev_hash %q is not the hash of record %d (%q)", r.Index, r.PrevHash, r.Index-1, prev)
		}
		want, err := auditHash(r)
		if err != nil {
			return fmt.Errorf("audit record %d: %w", r.Index, err)
		}
		if r.Hash != want {
			return fmt.Errorf("audit record %d (%s): hash %s does not match its contents (recomputed %s)", r.Index, r.Type, r.Hash, want)
		}
		prev = r.Hash
	}
	return nil
}

// auditHash recomputes a record's hash from its fields.
func auditHash(r *api.AuditRecord) (string, error) {
	prev, err := hex.DecodeString(r.PrevHash)
	if err != nil {
		return "", fmt.Errorf("prev_hash is not hex: %w", err)
	}
	h := sha256.New()
	h.Write(prev)
	enc := msgpack.NewEncoder(h)
	var first error
	do := func(err error) {
		if first == nil {
			first = err
		}
	}
	do(enc.EncodeArrayLen(9))
	do(enc.EncodeUint(r.Index))
	do(enc.EncodeInt(r.Time.UnixNano()))
	do(enc.EncodeString(r.Type))
	do(enc.EncodeString(r.LicenseID))
	do(enc.EncodeString(r.LeaseID))
	do(enc.EncodeString(r.Feature))
	if r.Holder == nil {
		do(enc.EncodeNil())
	} else {
		do(enc.EncodeArrayLen(4))
		for _, s := range []string{r.Holder.Machine, r.Holder.User, r.Holder.Hostname, r.Holder.Process} {
			do(enc.EncodeString(s))
		}
	}
	do(enc.EncodeString(r.Detail))
	do(enc.EncodeString(r.PrevHash))
	if first != nil {
		return "", first
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

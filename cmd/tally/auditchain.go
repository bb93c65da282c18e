package main

import (
	"context"
	"fmt"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
	"github.com/tallyhq/tally/fsm"
)

// defaultAuditPage is how many records one audit read asks for; the server
// caps a page at maxAuditPage.
const (
	defaultAuditPage = 5000
	maxAuditPage     = 10000
)

// auditProgressEvery is how often (in records) the audit commands report
// progress on stderr; a variable so tests can lower it.
var auditProgressEvery uint64 = 10000

// auditPager reads one chain page by page through GET /v1/audit.
//
// It advances by the number of records received, not by the last index:
// the server serves the stored records from position after, so a chain
// whose indexes were tampered with (a record removed, two swapped) is still
// read record by record instead of skipping or looping.
type auditPager struct {
	c           *client.Client
	after       uint64
	pageSize    int
	consistency string
	// nodeID, when set, is the node every page must come from.
	nodeID string
	buf    []api.AuditRecord
	done   bool
}

// next returns the next record, or nil at the end of the chain. The end is
// an empty page, so a server whose page cap is below pageSize is read to
// the end too.
func (p *auditPager) next(ctx context.Context) (*api.AuditRecord, error) {
	for len(p.buf) == 0 {
		if p.done {
			return nil, nil
		}
		var opts []client.ReadOption
		if p.consistency != "" {
			opts = append(opts, client.WithConsistency(p.consistency))
		}
		page, err := p.c.Audit(ctx, p.after, p.pageSize, opts...)
		if err != nil {
			return nil, err
		}
		if p.nodeID != "" && page.NodeID != "" && page.NodeID != p.nodeID {
			return nil, fmt.Errorf("audit page after %d came from node %s, not %s: is a load balancer in front of this address?", p.after, page.NodeID, p.nodeID)
		}
		if len(page.Records) == 0 {
			p.done = true
		}
		p.buf = page.Records
		p.after += uint64(len(page.Records))
	}
	r := &p.buf[0]
	p.buf = p.buf[1:]
	return r, nil
}

// chainCheck follows one chain record by record with fsm.VerifyLink, the
// same rule the state machine chains by, and remembers the first break.
type chainCheck struct {
	start    uint64 // the index the first record must have
	prev     *fsm.AuditRecord
	count    uint64
	head     api.AuditRecord
	brokenAt uint64 // position-based index of the first bad link; 0: none
	broken   string
}

// add checks rec as the next link. The k-th record checked should have
// index start+k-1; brokenAt names that index, so a removed record is
// reported where the gap is.
func (c *chainCheck) add(rec api.AuditRecord) {
	want := c.start + c.count
	c.count++
	c.head = rec
	fr := fsmRecord(rec)
	defer func() { c.prev = &fr }()
	if c.brokenAt != 0 {
		return
	}
	var err error
	if c.prev == nil && fr.Index != want {
		err = fmt.Errorf("audit record %d: the chain starts at index %d, want %d", fr.Index, fr.Index, want)
	} else {
		err = fsm.VerifyLink(c.prev, &fr)
	}
	if err != nil {
		c.brokenAt, c.broken = want, err.Error()
	}
}

// anchor sets the record before start (already read), so that the first
// checked record's prev_hash is checked against it too.
func (c *chainCheck) anchor(rec api.AuditRecord) {
	fr := fsmRecord(rec)
	c.prev = &fr
}

// fsmRecord is the state machine's form of a record, which is what its hash
// covers: times as Unix nanoseconds (RFC 3339 with nanoseconds is exact).
func fsmRecord(r api.AuditRecord) fsm.AuditRecord {
	out := fsm.AuditRecord{
		Index:     r.Index,
		Time:      r.Time.UnixNano(),
		Type:      r.Type,
		LicenseID: r.LicenseID,
		LeaseID:   r.LeaseID,
		Feature:   r.Feature,
		Detail:    r.Detail,
		PrevHash:  r.PrevHash,
		Hash:      r.Hash,
	}
	if r.Holder != nil {
		out.Holder = &fsm.Holder{Machine: r.Holder.Machine, User: r.Holder.User, Hostname: r.Holder.Hostname, Process: r.Holder.Process}
	}
	return out
}

// sameRecord compares two nodes' copies of a record field by field, so a
// record changed without fixing its hash still counts as a difference.
func sameRecord(a, b *api.AuditRecord) bool {
	fa, fb := fsmRecord(*a), fsmRecord(*b)
	if (fa.Holder == nil) != (fb.Holder == nil) || fa.Holder != nil && *fa.Holder != *fb.Holder {
		return false
	}
	fa.Holder, fb.Holder = nil, nil
	return fa == fb
}

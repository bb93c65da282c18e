package node

import (
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
)

// The fsm keeps its own types (it imports nothing of ours); these turn
// them into wire types and back.

func toTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func toHolder(h fsm.Holder) api.Holder {
	return api.Holder{Machine: h.Machine, User: h.User, Hostname: h.Hostname, Process: h.Process}
}

func fromHolder(h api.Holder) fsm.Holder {
	return fsm.Holder{Machine: h.Machine, User: h.User, Hostname: h.Hostname, Process: h.Process}
}

func toProduct(p fsm.Product) api.Product {
	return api.Product{ID: p.ID, Name: p.Name, CreatedAt: toTime(p.CreatedAt)}
}

func toFeatures(fs []fsm.Feature) []api.Feature {
	out := make([]api.Feature, len(fs))
	for i, f := range fs {
		out[i] = api.Feature{Name: f.Name}
		if f.Seats >= 0 {
			seats := f.Seats
			out[i].Seats = &seats
		}
	}
	return out
}

func fromFeatures(fs []api.Feature) []fsm.Feature {
	out := make([]fsm.Feature, len(fs))
	for i, f := range fs {
		out[i] = fsm.Feature{Name: f.Name, Seats: -1}
		if f.Seats != nil {
			out[i].Seats = *f.Seats
		}
	}
	return out
}

func toPolicy(p fsm.Policy) api.Policy {
	return api.Policy{
		ID:              p.ID,
		ProductID:       p.ProductID,
		Name:            p.Name,
		Features:        toFeatures(p.Features),
		LeaseTTLSeconds: p.LeaseTTL / int64(time.Second),
		SeatRule:        p.SeatRule,
		MaxBorrowHours:  p.MaxBorrowHours,
		CreatedAt:       toTime(p.CreatedAt),
		UpdatedAt:       toTime(p.UpdatedAt),
		DurationSeconds: p.Duration / int64(time.Second),
	}
}

func toSeats(u map[string]fsm.SeatUsage) map[string]api.SeatUsage {
	out := make(map[string]api.SeatUsage, len(u))
	for k, v := range u {
		out[k] = api.SeatUsage{Total: v.Total, InUse: v.InUse}
	}
	return out
}

// toLicense is the admin view of a license: with live seats and the
// usage counters.
func (n *Node) toLicense(l fsm.License) api.License {
	out := licenseWithSeats(l, toSeats(n.fsm.Usage(l.ID)))
	out.Usage = toUsage(n.fsm.UsageCounters(l.ID))
	return out
}

// licenseWithSeats converts l with seat usage already read, so a caller
// that has it does not read the state twice.
func licenseWithSeats(l fsm.License, seats map[string]api.SeatUsage) api.License {
	out := api.License{
		ID:        l.ID,
		Key:       l.Key,
		PolicyID:  l.PolicyID,
		ProductID: l.ProductID,
		Customer:  l.Customer,
		Status:    l.Status,
		Metadata:  l.Metadata,
		CreatedAt: toTime(l.CreatedAt),
		Seats:     seats,
		Overrides: toOverrides(l.Overrides),
	}
	if l.ExpiresAt != 0 {
		t := toTime(l.ExpiresAt)
		out.ExpiresAt = &t
	}
	return out
}

func toLease(l fsm.Lease) api.Lease {
	out := api.Lease{
		ID:        l.ID,
		LicenseID: l.LicenseID,
		Feature:   l.Feature,
		Holder:    toHolder(l.Holder),
		IssuedAt:  toTime(l.IssuedAt),
		ExpiresAt: toTime(l.ExpiresAt),
	}
	if l.BorrowedUntil != 0 {
		t := toTime(l.BorrowedUntil)
		out.BorrowedUntil = &t
	}
	return out
}

func toAudit(r fsm.AuditRecord) api.AuditRecord {
	out := api.AuditRecord{
		Index:     r.Index,
		Time:      toTime(r.Time),
		Type:      r.Type,
		LicenseID: r.LicenseID,
		LeaseID:   r.LeaseID,
		Feature:   r.Feature,
		Detail:    r.Detail,
		PrevHash:  r.PrevHash,
		Hash:      r.Hash,
	}
	if r.Holder != nil {
		h := toHolder(*r.Holder)
		out.Holder = &h
	}
	return out
}

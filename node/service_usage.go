package node

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
)

// This file serves license overrides and usage counters (DESIGN §2).

// UpdateLicense replaces a license's overrides through Raft.
func (n *Node) UpdateLicense(ctx context.Context, id string, req api.UpdateLicenseRequest) (*api.License, error) {
	if req.Overrides == nil {
		return nil, api.Errorf(api.CodeInvalidRequest, "overrides is required ({} removes them)")
	}
	res, err := n.apply(fsm.CmdUpdateLicense, &fsm.UpdateLicense{ID: id, Overrides: fromOverrides(req.Overrides), Time: n.now()})
	if err != nil {
		return nil, err
	}
	out := n.toLicense(*res.License)
	return &out, nil
}

// fromOverrides turns wire overrides into the fsm's, seats sorted by
// feature so that the command encodes the same way every time.
func fromOverrides(o *api.LicenseOverrides) *fsm.Overrides {
	if o == nil {
		return nil
	}
	out := &fsm.Overrides{LeaseTTL: o.LeaseTTLSeconds * int64(time.Second)}
	for _, name := range slices.Sorted(maps.Keys(o.Seats)) {
		out.Seats = append(out.Seats, fsm.Feature{Name: name, Seats: o.Seats[name]})
	}
	return out
}

func toOverrides(o *fsm.Overrides) *api.LicenseOverrides {
	if o == nil {
		return nil
	}
	out := &api.LicenseOverrides{LeaseTTLSeconds: o.LeaseTTL / int64(time.Second)}
	if len(o.Seats) > 0 {
		out.Seats = make(map[string]int, len(o.Seats))
		for _, f := range o.Seats {
			out.Seats[f.Name] = f.Seats
		}
	}
	return out
}

func toUsage(cs map[string]fsm.FeatureCounters) map[string]api.FeatureUsage {
	if cs == nil {
		return nil
	}
	out := make(map[string]api.FeatureUsage, len(cs))
	for name, c := range cs {
		u := api.FeatureUsage{Granted: c.Granted, Denied: c.Denied, PeakInUse: c.PeakInUse}
		if c.PeakInUse > 0 {
			t := toTime(c.PeakAt)
			u.PeakAt = &t
		}
		out[name] = u
	}
	return out
}

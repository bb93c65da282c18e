package fsm

import (
	"cmp"
	"maps"
	"slices"
)

// This file is the usage counters: per (license, feature), how many
// checkouts were granted and denied, and the most seats ever in use at once
// with the time of that peak. They are replicated state like everything
// else (kept in snapshots, the same on every node), counted by Checkout
// entries of body version 3 on: older entries replay without counting, so
// a cluster's counters start with the release that writes version 3.
//
// A denial is counted under the feature asked for only when the license's
// policy has that feature, so a key holder cannot grow the state with
// made-up feature names; a refused checkout of another feature is still
// audited (lease.denied), just not counted. A retry answered with its
// original lease counts nothing: it took nothing.

// FeatureCounters are the usage counters of one (license, feature).
type FeatureCounters struct {
	Granted uint64 `msgpack:"granted"`
	Denied  uint64 `msgpack:"denied"`
	// PeakInUse is the most seats in use at once (after a grant), PeakAt
	// the log time it was first reached.
	PeakInUse int   `msgpack:"peak"`
	PeakAt    int64 `msgpack:"peak_at"`
}

// snapCounters is one item of the snapshot's usage section.
type snapCounters struct {
	License  string          `msgpack:"license"`
	Feature  string          `msgpack:"feature"`
	Counters FeatureCounters `msgpack:"counters"`
}

// countGrant counts a granted checkout; inUse is the slot's seats in use
// after it.
func (s *state) countGrant(licenseID, feature string, inUse int, now int64) {
	byFeature := s.counters[licenseID]
	if byFeature == nil {
		byFeature = map[string]FeatureCounters{}
		s.counters[licenseID] = byFeature
	}
	c := byFeature[feature]
	c.Granted++
	if inUse > c.PeakInUse {
		c.PeakInUse, c.PeakAt = inUse, now
	}
	byFeature[feature] = c
}

// countDenial counts a refused checkout of a feature of the license's
// policy; other features are not counted.
func (s *state) countDenial(lic License, feature string) {
	pol := s.policies[lic.PolicyID]
	f, ok := pol.feature(feature)
	if !ok {
		return
	}
	byFeature := s.counters[lic.ID]
	if byFeature == nil {
		byFeature = map[string]FeatureCounters{}
		s.counters[lic.ID] = byFeature
	}
	c := byFeature[f.Name]
	c.Denied++
	byFeature[f.Name] = c
}

// UsageCounters returns the counters of a license by feature: every
// feature of its policy (zero when never counted) and every feature it was
// counted under before the policy dropped it. nil for an unknown license.
func (f *FSM) UsageCounters(licenseID string) (out map[string]FeatureCounters) {
	f.read(func(s *state) {
		lic, ok := s.licenses[licenseID]
		if !ok {
			return
		}
		out = make(map[string]FeatureCounters, len(s.policies[lic.PolicyID].Features))
		for _, feat := range s.policies[lic.PolicyID].Features {
			out[feat.Name] = FeatureCounters{}
		}
		maps.Copy(out, s.counters[licenseID])
	})
	return out
}

// captureCounters copies the counters for a snapshot, under the read lock;
// sortCounters orders them outside it.
func captureCounters(m map[string]map[string]FeatureCounters) []snapCounters {
	n := 0
	for _, byFeature := range m {
		n += len(byFeature)
	}
	out := make([]snapCounters, 0, n)
	for lic, byFeature := range m {
		for feat, c := range byFeature {
			out = append(out, snapCounters{License: lic, Feature: feat, Counters: c})
		}
	}
	return out
}

func sortCounters(cs []snapCounters) {
	slices.SortFunc(cs, func(a, b snapCounters) int {
		if c := cmp.Compare(a.License, b.License); c != 0 {
			return c
		}
		return cmp.Compare(a.Feature, b.Feature)
	})
}

// restoreCounters adds one snapshot item to the state.
func (s *state) restoreCounters(sc snapCounters) {
	byFeature := s.counters[sc.License]
	if byFeature == nil {
		byFeature = map[string]FeatureCounters{}
		s.counters[sc.License] = byFeature
	}
	byFeature[sc.Feature] = sc.Counters
}

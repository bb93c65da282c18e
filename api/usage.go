package api

import "time"

// LicenseOverrides replace a license's policy values for that license
// only (a customer bought two extra seats); the policy still governs
// everything they do not name, and its changes still reach the license.
type LicenseOverrides struct {
	// Seats maps a feature of the policy to this license's seat count;
	// -1 means entitled but not counted.
	Seats map[string]int `json:"seats,omitempty"`
	// LeaseTTLSeconds, when > 0, replaces the policy's lease TTL.
	LeaseTTLSeconds int64 `json:"lease_ttl_seconds,omitempty"`
}

// UpdateLicenseRequest is the body of PATCH /v1/licenses/{id}. Overrides
// replaces the license's overrides as a whole; {} removes them.
type UpdateLicenseRequest struct {
	Overrides *LicenseOverrides `json:"overrides"`
}

// FeatureUsage is the usage history of one feature of a license: checkouts
// granted and denied, and the most seats ever in use at once with the time
// that peak was first reached (absent while it is 0). Counted by the
// cluster since it ran a release with usage counters.
type FeatureUsage struct {
	Granted   uint64     `json:"granted"`
	Denied    uint64     `json:"denied"`
	PeakInUse int        `json:"peak_in_use"`
	PeakAt    *time.Time `json:"peak_at,omitempty"`
}

package transport

import (
	"context"
	"strconv"

	"github.com/tallyhq/tally/api"
)

// This file serves what DESIGN §2 adds to licenses and policies: per-license
// overrides (PATCH /v1/licenses/{id}) and policy durations. Usage counters
// need no endpoint of their own: they ride on GET /v1/licenses[/{id}].

// LicenseUpdateBackend changes a license. UpdateLicense is a leader-only
// write (*NotLeaderError elsewhere, so it is forwarded like every write).
type LicenseUpdateBackend interface {
	UpdateLicense(ctx context.Context, id string, req api.UpdateLicenseRequest) (*api.License, error)
}

// licenseUpdateRoutes registers the license update endpoint.
func (s *Server) licenseUpdateRoutes(admin func(string, handlerFunc)) {
	admin("PATCH /v1/licenses/{id}", s.updateLicense)
}

func (s *Server) updateLicense(r *request) (answer, error) {
	var req api.UpdateLicenseRequest
	if err := r.decode(&req); err != nil {
		return answer{}, err
	}
	if req.Overrides == nil {
		return answer{}, invalid("overrides is required ({} removes them)")
	}
	if err := checkOverrides(req.Overrides); err != nil {
		return answer{}, err
	}
	return ok(s.cfg.Backend.UpdateLicense(r.Context(), r.PathValue("id"), req))
}

// maxOverrides bounds the features one license may override.
const maxOverrides = 64

// checkOverrides checks the shape of overrides; whether each feature is
// in the license's policy is the state machine's to say.
func checkOverrides(o *api.LicenseOverrides) error {
	if o == nil {
		return nil
	}
	if len(o.Seats) > maxOverrides {
		return invalid("overrides.seats holds at most " + strconv.Itoa(maxOverrides) + " features")
	}
	for name, n := range o.Seats {
		if err := checkField("overrides.seats feature", name, true); err != nil {
			return err
		}
		if n < -1 {
			return invalid("overrides.seats values must be -1 (not counted) or more")
		}
	}
	return checkSeconds("overrides.lease_ttl_seconds", o.LeaseTTLSeconds, false)
}

// maxDurationSeconds bounds a policy's duration (100 years): its seconds
// become int64 nanoseconds on the node.
const maxDurationSeconds = 100 * 365 * 24 * 60 * 60

func checkDuration(v int64) error {
	switch {
	case v < 0:
		return invalid("duration_seconds must not be negative")
	case v > maxDurationSeconds:
		return invalid("duration_seconds must be at most " + strconv.Itoa(maxDurationSeconds) + " (100 years)")
	}
	return nil
}

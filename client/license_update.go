package client

import (
	"context"
	"net/http"

	"github.com/tallyhq/tally/api"
)

// UpdateLicense replaces a license's overrides (per-license seat counts
// and lease TTL); overrides {} removes them. License and Licenses carry
// the usage counters.
func (c *Client) UpdateLicense(ctx context.Context, id string, req api.UpdateLicenseRequest) (*api.License, error) {
	var out api.License
	if err := c.change(ctx, http.MethodPatch, "/v1/licenses/"+seg(id), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

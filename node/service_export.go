package node

import (
	"context"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
	"github.com/tallyhq/tally/token"
)

// ExportLicense signs a license file for offline use. It runs on the leader:
// a node registers its key in the replicated key set (GET /v1/keys) when it
// takes the lead, so the leader's key is the one sure to be published; a
// follower forwards. The read is linearizable, so a license
// suspended or revoked a moment ago is not exported.
//
// The file expires at the earlier of the license's expiry and req.Until. A
// license that never expires needs an until: a file without an end could
// never be withdrawn, since nothing offline learns of a later revocation.
func (n *Node) ExportLicense(ctx context.Context, id string, req api.ExportLicenseRequest) (*api.LicenseExport, error) {
	if !n.leaderReady.Load() {
		return nil, n.notLeader()
	}
	if err := n.read(ctx, api.ConsistencyLinearizable); err != nil {
		return nil, err
	}
	lic, ok := n.fsm.License(id)
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "no such license")
	}
	now := n.cfg.Now()
	switch {
	case lic.Status == fsm.StatusRevoked:
		return nil, api.Errorf(api.CodeLicenseRevoked, "the license is revoked")
	case lic.Status == fsm.StatusSuspended:
		return nil, api.Errorf(api.CodeLicenseSuspended, "the license is suspended")
	case lic.ExpiresAt != 0 && now.UnixNano() >= lic.ExpiresAt:
		return nil, api.Errorf(api.CodeLicenseExpired, "the license has expired")
	}
	exp, err := exportExpiry(lic, req.Until, now)
	if err != nil {
		return nil, err
	}
	pol, ok := n.fsm.Policy(lic.PolicyID)
	if !ok { // the fsm never lets a license outlive its policy
		return nil, api.Errorf(api.CodeInternal, "the license's policy is missing")
	}
	claims := token.LicenseClaims{
		Issuer:    n.cfg.ClusterName,
		Subject:   lic.ID,
		ProductID: lic.ProductID,
		Customer:  lic.Customer,
		PolicyID:  lic.PolicyID,
		Features:  licenseFeatures(fsm.LicenseFeatures(lic, pol)),
		Machine:   req.Machine,
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		ExpiresAt: exp.Unix(),
	}
	jws, err := n.signingKey().signer.SignLicense(claims)
	if err != nil {
		return nil, err
	}
	return &api.LicenseExport{LicenseFile: token.EncodeLicenseFile(jws, claims), ExpiresAt: exp}, nil
}

// exportExpiry is the earlier of the license's expiry and until, in whole
// seconds as the file carries it. until must lie in the future and not
// beyond the license's expiry.
func exportExpiry(lic fsm.License, until *time.Time, now time.Time) (time.Time, error) {
	var licExp time.Time
	if lic.ExpiresAt != 0 {
		licExp = toTime(lic.ExpiresAt).Truncate(time.Second)
	}
	if until == nil {
		if licExp.IsZero() {
			return time.Time{}, api.Errorf(api.CodeInvalidRequest, "until is required: the license never expires, and a license file must")
		}
		return licExp, nil
	}
	u := until.UTC().Truncate(time.Second)
	if !u.After(now) {
		return time.Time{}, api.Errorf(api.CodeInvalidRequest, "until must be in the future")
	}
	if !licExp.IsZero() && u.After(toTime(lic.ExpiresAt)) {
		return time.Time{}, api.Errorf(api.CodeInvalidRequest, "until is after the license's expiry "+licExp.Format(time.RFC3339))
	}
	return u, nil
}

// licenseFeatures copies a policy's features into license-file claims;
// fsm seats below zero mean uncounted.
func licenseFeatures(fs []fsm.Feature) []token.LicenseFeature {
	out := make([]token.LicenseFeature, len(fs))
	for i, f := range fs {
		out[i] = token.LicenseFeature{Name: f.Name}
		if f.Seats >= 0 {
			seats := f.Seats
			out[i].Seats = &seats
		}
	}
	return out
}

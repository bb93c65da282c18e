package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/token"
)

// A follower forwards the export to the leader, whose key signs a file that
// verifies offline against GET /v1/keys; every refusal has its code.
func TestExportLicense(t *testing.T) {
	c := newTestCluster(t, 3)
	cl := c.client(c.followers()[0])
	ctx := context.Background()
	lic := provision(t, cl, 2, 60) // never expires
	licExp := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	dated, err := cl.CreateLicense(ctx, api.CreateLicenseRequest{PolicyID: lic.PolicyID, Customer: "Dated Inc", ExpiresAt: &licExp})
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := cl.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var jwk []token.JWK
	for _, k := range jwks.Keys {
		jwk = append(jwk, token.JWK(k))
	}
	keys, err := token.KeySetFromJWKs(jwk)
	if err != nil {
		t.Fatal(err)
	}

	// Locked to a machine, ending before the license (which never ends).
	until := time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second)
	out, err := cl.ExportLicense(ctx, lic.ID, api.ExportLicenseRequest{Machine: "fp-ws7", Until: &until})
	if err != nil {
		t.Fatal(err)
	}
	if !out.ExpiresAt.Equal(until) {
		t.Errorf("expires_at = %v, want %v", out.ExpiresAt, until)
	}
	got, err := token.VerifyLicense(out.LicenseFile, keys, time.Now(), "fp-ws7")
	if err != nil {
		t.Fatalf("exported file does not verify: %v\n%s", err, out.LicenseFile)
	}
	if got.Subject != lic.ID || got.Customer != "ACME" || got.PolicyID != lic.PolicyID || got.ProductID != lic.ProductID ||
		got.Machine != "fp-ws7" || got.ExpiresAt != until.Unix() || token.FormatFeatures(got.Features) != "cad=2, viewer" {
		t.Errorf("claims = %+v", got)
	}
	if _, err := token.VerifyLicense(out.LicenseFile, keys, time.Now(), "fp-other"); !errors.Is(err, token.ErrWrongMachine) {
		t.Errorf("on another machine: %v, want ErrWrongMachine", err)
	}

	// Without until, a dated license's file ends with the license.
	out, err = cl.ExportLicense(ctx, dated.ID, api.ExportLicenseRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !out.ExpiresAt.Equal(licExp) {
		t.Errorf("expires_at = %v, want the license's %v", out.ExpiresAt, licExp)
	}
	if got, err := token.VerifyLicense(out.LicenseFile, keys, time.Now(), "any-machine"); err != nil || got.Machine != "" {
		t.Errorf("floating file: %+v, %v", got, err)
	}

	expect := func(what string, err error, want *api.Error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %s", what, err, want.Code)
		}
	}
	past := time.Now().Add(-time.Minute)
	beyond := licExp.Add(time.Hour)
	export := func(id string, req api.ExportLicenseRequest) error {
		_, err := cl.ExportLicense(ctx, id, req)
		return err
	}
	expect("unknown license", export("lic_nope", api.ExportLicenseRequest{Until: &until}), api.ErrNotFound)
	expect("until in the past", export(lic.ID, api.ExportLicenseRequest{Until: &past}), api.ErrInvalidRequest)
	expect("until beyond the license", export(dated.ID, api.ExportLicenseRequest{Until: &beyond}), api.ErrInvalidRequest)
	expect("no until, license never expires", export(lic.ID, api.ExportLicenseRequest{}), api.ErrInvalidRequest)
	expect("machine with a space", export(lic.ID, api.ExportLicenseRequest{Machine: "fp ws7", Until: &until}), api.ErrInvalidRequest)

	if _, err := cl.SuspendLicense(ctx, lic.ID); err != nil {
		t.Fatal(err)
	}
	expect("suspended", export(lic.ID, api.ExportLicenseRequest{Until: &until}), api.ErrLicenseSuspended)
	if _, err := cl.RevokeLicense(ctx, lic.ID); err != nil {
		t.Fatal(err)
	}
	expect("revoked", export(lic.ID, api.ExportLicenseRequest{Until: &until}), api.ErrLicenseRevoked)
	c.checkInvariants()
}

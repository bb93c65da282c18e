package transport

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// exportBackend records the export it is asked for.
type exportBackend struct {
	fakeBackend
	gotID  string
	gotReq api.ExportLicenseRequest
}

func (b *exportBackend) ExportLicense(_ context.Context, id string, req api.ExportLicenseRequest) (*api.LicenseExport, error) {
	b.gotID, b.gotReq = id, req
	if id == "lic_revoked" {
		return nil, api.Errorf(api.CodeLicenseRevoked, "the license is revoked")
	}
	return &api.LicenseExport{LicenseFile: "# file\nx.y.z\n", ExpiresAt: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)}, nil
}

func TestExportLicenseHandler(t *testing.T) {
	b := &exportBackend{}
	srv, _ := newTestServer(t, b)
	url := srv.URL + "/v1/licenses/lic_1/export"

	r := send(t, "POST", url, token, `{"machine":"fp-1","until":"2027-01-01T00:00:00Z"}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var out api.LicenseExport
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.LicenseFile != "# file\nx.y.z\n" {
		t.Fatalf("answer %q: %v", r.body, err)
	}
	if b.gotID != "lic_1" || b.gotReq.Machine != "fp-1" || b.gotReq.Until == nil ||
		!b.gotReq.Until.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("backend got %q %+v", b.gotID, b.gotReq)
	}
	if r := send(t, "POST", url, token, ""); r.status != 200 || b.gotReq.Machine != "" || b.gotReq.Until != nil {
		t.Errorf("empty body: status %d, request %+v", r.status, b.gotReq)
	}

	for _, tc := range []struct {
		name, auth, path, body string
		status                 int
		code                   string
	}{
		{"no admin token", "", url, `{}`, 401, api.CodeUnauthorized},
		{"bad until", token, url, `{"until":"next week"}`, 400, api.CodeInvalidRequest},
		{"unknown field", token, url, `{"machine":"m","seats":3}`, 400, api.CodeInvalidRequest},
		{"machine with a space", token, url, `{"machine":"fp 1"}`, 400, api.CodeInvalidRequest},
		{"machine with a newline", token, url, `{"machine":"fp\n1"}`, 400, api.CodeInvalidRequest},
		{"machine too long", token, url, `{"machine":"` + strings.Repeat("f", 300) + `"}`, 400, api.CodeInvalidRequest},
		{"wrong method", token, url, ``, 405, api.CodeMethodNotAllowed},
		{"revoked", token, srv.URL + "/v1/licenses/lic_revoked/export", `{}`, 403, api.CodeLicenseRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "POST"
			if tc.name == "wrong method" {
				method = "GET"
			}
			r := send(t, method, tc.path, tc.auth, tc.body)
			if r.status != tc.status || r.err.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s (%s)", r.status, r.err.Code, tc.status, tc.code, r.body)
			}
		})
	}
}

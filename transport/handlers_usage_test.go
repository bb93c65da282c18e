package transport

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// usageBackend adds license updates and reads to fakeBackend.
type usageBackend struct {
	fakeBackend
	updated *api.UpdateLicenseRequest
	id      string
}

var peak = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (b *usageBackend) UpdateLicense(_ context.Context, id string, req api.UpdateLicenseRequest) (*api.License, error) {
	b.id, b.updated = id, &req
	return &api.License{ID: id, Overrides: req.Overrides}, nil
}

func (b *usageBackend) License(_ context.Context, id, _ string) (*api.License, error) {
	return &api.License{ID: id, Usage: map[string]api.FeatureUsage{
		"cad": {Granted: 7, Denied: 2, PeakInUse: 3, PeakAt: &peak}}}, nil
}

func TestUpdateLicenseAndUsage(t *testing.T) {
	b := &usageBackend{}
	srv, _ := newTestServer(t, b)

	r := send(t, "PATCH", srv.URL+"/v1/licenses/lic1", token, `{"overrides":{"seats":{"cad":5,"view":-1},"lease_ttl_seconds":30}}`)
	if r.status != 200 {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	if b.id != "lic1" || b.updated.Overrides.Seats["cad"] != 5 || b.updated.Overrides.Seats["view"] != -1 ||
		b.updated.Overrides.LeaseTTLSeconds != 30 {
		t.Fatalf("backend got %s %+v", b.id, b.updated.Overrides)
	}
	var l api.License
	if err := json.Unmarshal([]byte(r.body), &l); err != nil || l.Overrides.Seats["cad"] != 5 {
		t.Fatalf("answer %s: %v", r.body, err)
	}

	r = send(t, "GET", srv.URL+"/v1/licenses/lic1", token, "")
	want := `"usage":{"cad":{"granted":7,"denied":2,"peak_in_use":3,"peak_at":"2026-01-02T03:04:05Z"}}`
	if r.status != 200 || !strings.Contains(r.body, want) {
		t.Fatalf("GET: %d %s, want it to hold %s", r.status, r.body, want)
	}
}

func TestUpdateLicenseAndDurationBadInput(t *testing.T) {
	srv, _ := newTestServer(t, &usageBackend{})
	many := make([]string, maxOverrides+1)
	for i := range many {
		many[i] = `"f` + strings.Repeat("x", i) + `":1`
	}
	policy := func(extra string) string {
		return `{"product_id":"p","name":"n","lease_ttl_seconds":60,"features":[{"name":"f"}]` + extra + `}`
	}
	cases := []struct {
		name, method, path, auth, body string
		status                         int
		code                           string
	}{
		{"no token", "PATCH", "/v1/licenses/lic1", "", `{"overrides":{}}`, 401, api.CodeUnauthorized},
		{"no overrides", "PATCH", "/v1/licenses/lic1", token, `{}`, 400, api.CodeInvalidRequest},
		{"unknown field", "PATCH", "/v1/licenses/lic1", token, `{"overrides":{},"customer":"x"}`, 400, api.CodeInvalidRequest},
		{"seats below -1", "PATCH", "/v1/licenses/lic1", token, `{"overrides":{"seats":{"cad":-2}}}`, 400, api.CodeInvalidRequest},
		{"empty feature name", "PATCH", "/v1/licenses/lic1", token, `{"overrides":{"seats":{"":1}}}`, 400, api.CodeInvalidRequest},
		{"negative ttl", "PATCH", "/v1/licenses/lic1", token, `{"overrides":{"lease_ttl_seconds":-1}}`, 400, api.CodeInvalidRequest},
		{"ttl overflows", "PATCH", "/v1/licenses/lic1", token, `{"overrides":{"lease_ttl_seconds":9300000000}}`, 400, api.CodeInvalidRequest},
		{"too many features", "PATCH", "/v1/licenses/lic1", token, `{"overrides":{"seats":{` + strings.Join(many, ",") + `}}}`, 400, api.CodeInvalidRequest},
		{"wrong method", "PUT", "/v1/licenses/lic1", token, `{}`, 405, api.CodeMethodNotAllowed},
		{"create license bad overrides", "POST", "/v1/licenses", token, `{"policy_id":"p","customer":"c","overrides":{"seats":{"cad":-5}}}`, 400, api.CodeInvalidRequest},
		{"negative duration", "POST", "/v1/policies", token, policy(`,"duration_seconds":-1`), 400, api.CodeInvalidRequest},
		{"duration overflows", "POST", "/v1/policies", token, policy(`,"duration_seconds":9300000000000`), 400, api.CodeInvalidRequest},
		{"patch negative duration", "PATCH", "/v1/policies/p", token, `{"duration_seconds":-5}`, 400, api.CodeInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, tc.method, srv.URL+tc.path, tc.auth, tc.body)
			if r.status != tc.status || r.err.Code != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", r.status, r.err.Code, r.err.Message, tc.status, tc.code)
			}
			if tc.status == 405 && !strings.Contains(r.header.Get("Allow"), "PATCH") {
				t.Fatalf("Allow = %q, want PATCH in it", r.header.Get("Allow"))
			}
		})
	}
}

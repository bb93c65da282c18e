package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/api"
)

// The fuzz targets below send arbitrary bodies to each endpoint that decodes
// JSON and hold the server to its contract: no panic, never a 5xx, every
// error a JSON body with a code whose status is the one answered, and
// anything that is not JSON at all a 400. Behind the handlers sits
// strictBackend, which accepts every call but answers a plain error (so a
// 500) when a request breaks a rule the handlers promise to enforce: that
// turns "bad input slipped through validation" into a fuzz failure too.

// strictBackend accepts every request that obeys the handlers' rules.
type strictBackend struct {
	Backend // any call not listed here panics: the fuzz target would report it
}

// errSlipped is the backend's complaint about a request validation let by.
func errSlipped(format string, args ...any) error {
	return fmt.Errorf("validation let through: "+format, args...)
}

func checkText(name, v string, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return errSlipped("empty %s", name)
	}
	if len(v) > maxField {
		return errSlipped("%s of %d bytes", name, len(v))
	}
	return nil
}

// checkNanos says whether seconds (times unit) fit in int64 nanoseconds, as
// the node computes them.
func checkNanos(name string, v int64, unit time.Duration) error {
	if v < 0 || v > int64(1<<63-1)/int64(unit) {
		return errSlipped("%s = %d overflows nanoseconds", name, v)
	}
	return nil
}

func firstErr(errs ...error) error { return errors.Join(errs...) }

func (strictBackend) Checkout(_ context.Context, r api.CheckoutRequest) (*api.LeaseResponse, error) {
	if err := firstErr(checkText("license_key", r.LicenseKey, true), checkText("feature", r.Feature, true),
		checkText("machine", r.Holder.Machine, true), checkText("user", r.Holder.User, false),
		checkText("hostname", r.Holder.Hostname, false), checkText("process", r.Holder.Process, false),
		checkText("request_id", r.RequestID, false), checkNanos("ttl_seconds", r.TTLSeconds, time.Second)); err != nil {
		return nil, err
	}
	return &api.LeaseResponse{Lease: api.Lease{ID: "lse_1", Feature: r.Feature, Holder: r.Holder}, Token: "t"}, nil
}

func (strictBackend) Heartbeat(_ context.Context, id, key string) (*api.LeaseResponse, error) {
	if err := checkText("license_key", key, true); err != nil {
		return nil, err
	}
	return &api.LeaseResponse{Lease: api.Lease{ID: id}, Token: "t"}, nil
}

func (strictBackend) Checkin(_ context.Context, _, key string) error {
	return checkText("license_key", key, true)
}

func (strictBackend) Validate(_ context.Context, r api.ValidateRequest, c string) (*api.ValidateResponse, error) {
	if c != api.ConsistencyStale && c != api.ConsistencyLinearizable {
		return nil, errSlipped("consistency %q", c)
	}
	if err := firstErr(checkText("license_key", r.LicenseKey, true), checkText("feature", r.Feature, false),
		checkText("machine", r.Machine, false)); err != nil {
		return nil, err
	}
	return &api.ValidateResponse{Valid: true, Consistency: c}, nil
}

func (strictBackend) CreateProduct(_ context.Context, r api.CreateProductRequest) (*api.Product, error) {
	if err := checkText("name", r.Name, true); err != nil {
		return nil, err
	}
	return &api.Product{ID: "prd_1", Name: r.Name}, nil
}

func checkPolicyFields(features []api.Feature, ttl, borrow int64, rule string) error {
	if len(features) == 0 {
		return errSlipped("no features")
	}
	for _, f := range features {
		if err := checkText("feature name", f.Name, true); err != nil {
			return err
		}
		if f.Seats != nil && *f.Seats < 0 {
			return errSlipped("seats %d", *f.Seats)
		}
	}
	if ttl <= 0 {
		return errSlipped("lease_ttl_seconds %d", ttl)
	}
	switch rule {
	case "", api.SeatRuleProcess, api.SeatRuleMachine, api.SeatRuleUser:
	default:
		return errSlipped("seat_rule %q", rule)
	}
	return firstErr(checkNanos("lease_ttl_seconds", ttl, time.Second), checkNanos("max_borrow_hours", borrow, time.Hour))
}

func (strictBackend) CreatePolicy(_ context.Context, r api.CreatePolicyRequest) (*api.Policy, error) {
	if err := firstErr(checkText("product_id", r.ProductID, true), checkText("name", r.Name, true),
		checkPolicyFields(r.Features, r.LeaseTTLSeconds, r.MaxBorrowHours, r.SeatRule),
		checkNanos("duration_seconds", r.DurationSeconds, time.Second)); err != nil {
		return nil, err
	}
	return &api.Policy{ID: "pol_1", Name: r.Name}, nil
}

func (strictBackend) UpdatePolicy(_ context.Context, id string, r api.UpdatePolicyRequest) (*api.Policy, error) {
	// Fill what the PATCH leaves out with valid values and check the rest
	// by the same rules as a new policy.
	features := []api.Feature{{Name: "f"}}
	if r.Features != nil {
		features = *r.Features
	}
	ttl, borrow, rule := int64(60), int64(0), ""
	if r.LeaseTTLSeconds != nil {
		ttl = *r.LeaseTTLSeconds
	}
	if r.MaxBorrowHours != nil {
		borrow = *r.MaxBorrowHours
	}
	if r.SeatRule != nil {
		rule = *r.SeatRule
	}
	var name, duration error
	if r.Name != nil {
		name = checkText("name", *r.Name, true)
	}
	if r.DurationSeconds != nil {
		duration = checkNanos("duration_seconds", *r.DurationSeconds, time.Second)
	}
	if err := firstErr(name, duration, checkPolicyFields(features, ttl, borrow, rule)); err != nil {
		return nil, err
	}
	return &api.Policy{ID: id}, nil
}

func (strictBackend) CreateLicense(_ context.Context, r api.CreateLicenseRequest) (*api.License, error) {
	if err := firstErr(checkText("policy_id", r.PolicyID, true), checkText("customer", r.Customer, true)); err != nil {
		return nil, err
	}
	if r.ExpiresAt != nil {
		// The node stores Unix nanoseconds, and 0 means "never".
		ns := r.ExpiresAt.UnixNano()
		if ns <= 0 || !time.Unix(0, ns).Equal(*r.ExpiresAt) {
			return nil, errSlipped("expires_at %s is not a positive Unix nanosecond time", r.ExpiresAt)
		}
	}
	if len(r.Metadata) > 64 {
		return nil, errSlipped("%d metadata entries", len(r.Metadata))
	}
	for k, v := range r.Metadata {
		if err := firstErr(checkText("metadata key", k, true), checkText("metadata value", v, false)); err != nil {
			return nil, err
		}
	}
	if err := strictOverrides(r.Overrides); err != nil {
		return nil, err
	}
	return &api.License{ID: "lic_1", Key: "K", PolicyID: r.PolicyID, Customer: r.Customer}, nil
}

func (strictBackend) UpdateLicense(_ context.Context, id string, r api.UpdateLicenseRequest) (*api.License, error) {
	if r.Overrides == nil {
		return nil, errSlipped("PATCH without overrides")
	}
	if err := strictOverrides(r.Overrides); err != nil {
		return nil, err
	}
	return &api.License{ID: id, Key: "K"}, nil
}

// strictOverrides holds a license's overrides to the handlers' rules.
func strictOverrides(o *api.LicenseOverrides) error {
	if o == nil {
		return nil
	}
	if len(o.Seats) > maxOverrides {
		return errSlipped("%d seat overrides", len(o.Seats))
	}
	for f, n := range o.Seats {
		if err := checkText("overrides feature", f, true); err != nil {
			return err
		}
		if n < -1 {
			return errSlipped("seat override %d", n)
		}
	}
	return checkNanos("overrides.lease_ttl_seconds", o.LeaseTTLSeconds, time.Second)
}

func (strictBackend) Audit(_ context.Context, after uint64, limit int, c string) ([]api.AuditRecord, error) {
	if limit <= 0 || limit > maxAuditPage {
		return nil, errSlipped("audit limit %d", limit)
	}
	if c != api.ConsistencyStale && c != api.ConsistencyLinearizable {
		return nil, errSlipped("consistency %q", c)
	}
	return []api.AuditRecord{{Index: after + 1, Type: "product.created"}}, nil
}

func (strictBackend) Status(bool) api.Status { return api.Status{NodeID: "n1"} }

// fuzzServer is one server per fuzz target; the handlers keep no state
// between requests but the metrics, so it may be shared by every input.
func fuzzServer() http.Handler {
	return NewServer(Config{Backend: strictBackend{}, AdminToken: token, Registerer: prometheus.NewRegistry()})
}

// serveFuzz sends one request and checks the answer against the contract.
func serveFuzz(t *testing.T, h http.Handler, method, target, auth string, body []byte) {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	status := rec.Code
	if status >= 500 {
		t.Fatalf("%s %s answered %d for %q: %s", method, target, status, body, rec.Body.Bytes())
	}
	if status < 400 {
		if status != http.StatusOK && status != http.StatusCreated {
			t.Fatalf("%s %s answered %d", method, target, status)
		}
		if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && !json.Valid(trimmed) {
			t.Fatalf("%s %s accepted a body that is not JSON: %q", method, target, body)
		}
		return
	}
	var e api.ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("%d answer is not the JSON error body: %q", status, rec.Body.Bytes())
	}
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("%d answer without code or message: %q", status, rec.Body.Bytes())
	}
	if want := api.StatusOf(e.Error.Code); want != status {
		t.Fatalf("code %s answered with %d, want %d", e.Error.Code, status, want)
	}
}

// fuzzBody runs one body fuzz target against method and path.
func fuzzBody(f *testing.F, method, path, auth string, seeds ...string) {
	for _, s := range append(seeds, "", "null", "{}", "[]", `"x"`, "{", `{"a":1}`, "\xff") {
		f.Add([]byte(s))
	}
	h := fuzzServer()
	f.Fuzz(func(t *testing.T, body []byte) { serveFuzz(t, h, method, path, auth, body) })
}

func FuzzCheckoutBody(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/v1/checkout", "",
		goodCheckout,
		`{"license_key":"K","feature":"cad","holder":{"machine":"m","user":"u","hostname":"h","process":"p"},"request_id":"r","ttl_seconds":30}`,
		`{"license_key":"K","feature":"cad","holder":{"machine":"m"},"ttl_seconds":9223372036854775807}`,
		`{"license_key":" ","feature":"cad","holder":{"machine":"m"}}`,
		`{"license_key":"K","feature":"cad","holder":null}`)
}

func FuzzValidateBody(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/v1/validate?consistency=linearizable", "",
		`{"license_key":"K"}`, `{"license_key":"K","feature":"cad","machine":"m"}`, `{"license_key":"K","feature":1}`)
}

// FuzzLicenseKeyBody covers heartbeat and checkin, which share one body.
func FuzzLicenseKeyBody(f *testing.F) {
	for _, s := range []string{`{"license_key":"K"}`, `{"license_key":""}`, "", "null", "{", `{"license_key":["K"]}`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	h := fuzzServer()
	f.Fuzz(func(t *testing.T, body []byte, checkin bool) {
		path := "/v1/leases/lse_1/heartbeat"
		if checkin {
			path = "/v1/leases/lse_1/checkin"
		}
		serveFuzz(t, h, http.MethodPost, path, "", body)
	})
}

func FuzzCreateProductBody(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/v1/products", token, `{"name":"CAD"}`, `{"name":""}`, `{"name":null}`)
}

func FuzzCreatePolicyBody(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/v1/policies", token,
		`{"product_id":"p","name":"n","features":[{"name":"cad","seats":3},{"name":"view"}],"lease_ttl_seconds":60,"seat_rule":"machine","max_borrow_hours":72}`,
		`{"product_id":"p","name":"n","features":[{"name":"cad","seats":0}],"lease_ttl_seconds":60}`,
		`{"product_id":"p","name":"n","features":[{"name":"cad"}],"lease_ttl_seconds":9300000000}`,
		`{"product_id":"p","name":"n","features":[null],"lease_ttl_seconds":60}`,
		`{"product_id":"p","name":"n","features":[{"name":"cad"}],"lease_ttl_seconds":60,"max_borrow_hours":3000000}`,
		`{"product_id":"p","name":"n","features":[{"name":"cad"}],"lease_ttl_seconds":60,"duration_seconds":9300000000000}`)
}

func FuzzUpdatePolicyBody(f *testing.F) {
	fuzzBody(f, http.MethodPatch, "/v1/policies/pol_1", token,
		`{"name":"n2"}`, `{"features":[{"name":"cad","seats":5}]}`, `{"features":[]}`, `{"features":null}`,
		`{"lease_ttl_seconds":120,"seat_rule":"user","max_borrow_hours":24}`, `{"lease_ttl_seconds":0}`, `{"name":""}`,
		`{"duration_seconds":31536000}`, `{"duration_seconds":-1}`)
}

func FuzzCreateLicenseBody(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/v1/licenses", token,
		`{"policy_id":"p","customer":"Acme","expires_at":"2027-01-31T00:00:00Z","metadata":{"contract":"C-1"}}`,
		`{"policy_id":"p","customer":"Acme","overrides":{"seats":{"cad":5,"viewer":-1},"lease_ttl_seconds":90}}`,
		`{"policy_id":"p","customer":"Acme"}`,
		`{"policy_id":"p","customer":"Acme","expires_at":"1970-01-01T00:00:00Z"}`,
		`{"policy_id":"p","customer":"Acme","expires_at":"9999-12-31T23:59:59Z"}`,
		`{"policy_id":"p","customer":"Acme","metadata":{"":"x"}}`)
}

func FuzzUpdateLicenseBody(f *testing.F) {
	fuzzBody(f, http.MethodPatch, "/v1/licenses/lic_1", token,
		`{"overrides":{"seats":{"cad":5}}}`, `{"overrides":{"seats":{"cad":-1},"lease_ttl_seconds":30}}`,
		`{"overrides":null}`, `{"overrides":{}}`, `{"overrides":{"seats":{"":2}}}`, `{"overrides":{"lease_ttl_seconds":-5}}`)
}

// FuzzAuditQuery covers the query string of GET /v1/audit, which `tally
// audit verify` and `tally audit export` page through.
func FuzzAuditQuery(f *testing.F) {
	for _, q := range []string{"", "after=5&limit=10", "after=-1", "limit=0", "limit=99999999999999999999",
		"consistency=stale", "consistency=eventual", "after=18446744073709551615", "%zz"} {
		f.Add(q)
	}
	h := fuzzServer()
	f.Fuzz(func(t *testing.T, query string) {
		if strings.ContainsAny(query, " #\r\n\t") || strings.ContainsFunc(query, func(r rune) bool { return r < 0x20 || r >= 0x7f }) {
			return // not a request line an HTTP client can send
		}
		serveFuzz(t, h, http.MethodGet, "/v1/audit?"+query, token, nil)
	})
}

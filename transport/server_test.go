package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/api"
)

const token = "0123456789abcdef0123456789abcdef"

// fakeBackend answers the calls a test sets; any other call panics through
// the nil embedded interface, which fails the test loudly.
type fakeBackend struct {
	Backend
	leader   func(stale string) string
	checkout func(api.CheckoutRequest) (*api.LeaseResponse, error)
	product  func(api.CreateProductRequest) (*api.Product, error)
	validate func(api.ValidateRequest, string) (*api.ValidateResponse, error)
}

func (f *fakeBackend) Checkout(_ context.Context, r api.CheckoutRequest) (*api.LeaseResponse, error) {
	return f.checkout(r)
}

func (f *fakeBackend) LeaderAddr(_ context.Context, stale string) string { return f.leader(stale) }

func (f *fakeBackend) CreateProduct(_ context.Context, r api.CreateProductRequest) (*api.Product, error) {
	return f.product(r)
}

func (f *fakeBackend) Validate(_ context.Context, r api.ValidateRequest, c string) (*api.ValidateResponse, error) {
	return f.validate(r, c)
}

func newTestServer(t *testing.T, b Backend) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(NewServer(Config{Backend: b, AdminToken: token, Registerer: reg, Gatherer: reg}))
	t.Cleanup(srv.Close)
	return srv, reg
}

type reply struct {
	status int
	header http.Header
	body   string
	err    api.Error
}

func send(t *testing.T, method, url, auth, body string, header ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	if resp.StatusCode >= 400 {
		var e api.ErrorResponse
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s %s: error answer is not the JSON error body: %q", method, url, raw)
		}
		r.err = e.Error
	}
	return r
}

const goodCheckout = `{"license_key":"K","feature":"cad","holder":{"machine":"m1"},"request_id":"r1"}`

func okCheckout(req api.CheckoutRequest) (*api.LeaseResponse, error) {
	return &api.LeaseResponse{Lease: api.Lease{ID: "lse_1", Feature: req.Feature, Holder: req.Holder}, Token: "t"}, nil
}

func TestBadInputGetsCodedClientErrors(t *testing.T) {
	srv, _ := newTestServer(t, &fakeBackend{checkout: okCheckout, validate: func(api.ValidateRequest, string) (*api.ValidateResponse, error) {
		return &api.ValidateResponse{Valid: true}, nil
	}})
	huge := `{"license_key":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	cases := []struct {
		name, method, path, auth, body string
		status                         int
		code                           string
	}{
		{"unknown route", "GET", "/v1/nope", "", "", 404, api.CodeNotFound},
		{"wrong method", "GET", "/v1/checkout", "", "", 405, api.CodeMethodNotAllowed},
		{"malformed json", "POST", "/v1/checkout", "", `{"license_key":`, 400, api.CodeInvalidRequest},
		{"unknown field", "POST", "/v1/checkout", "", `{"license_key":"K","bogus":1}`, 400, api.CodeInvalidRequest},
		{"trailing data", "POST", "/v1/checkout", "", goodCheckout + `{}`, 400, api.CodeInvalidRequest},
		{"trailing brace", "POST", "/v1/checkout", "", goodCheckout + ` }`, 400, api.CodeInvalidRequest},
		{"missing key", "POST", "/v1/checkout", "", `{"feature":"cad","holder":{"machine":"m"}}`, 400, api.CodeInvalidRequest},
		{"missing machine", "POST", "/v1/checkout", "", `{"license_key":"K","feature":"cad"}`, 400, api.CodeInvalidRequest},
		{"negative ttl", "POST", "/v1/checkout", "", `{"license_key":"K","feature":"cad","holder":{"machine":"m"},"ttl_seconds":-1}`, 400, api.CodeInvalidRequest},
		{"long field", "POST", "/v1/checkout", "", `{"license_key":"K","feature":"` + strings.Repeat("f", 300) + `","holder":{"machine":"m"}}`, 400, api.CodeInvalidRequest},
		{"body over 1 MiB", "POST", "/v1/checkout", "", huge, 413, api.CodeTooLarge},
		{"bad consistency", "POST", "/v1/validate?consistency=eventual", "", `{"license_key":"K"}`, 400, api.CodeInvalidRequest},
		{"admin without token", "POST", "/v1/products", "", `{"name":"x"}`, 401, api.CodeUnauthorized},
		{"admin wrong token", "POST", "/v1/products", "wrong", `{"name":"x"}`, 401, api.CodeUnauthorized},
		{"policy without features", "POST", "/v1/policies", token, `{"product_id":"p","name":"n","lease_ttl_seconds":60}`, 400, api.CodeInvalidRequest},
		{"policy bad seat rule", "POST", "/v1/policies", token, `{"product_id":"p","name":"n","lease_ttl_seconds":60,"features":[{"name":"f"}],"seat_rule":"galaxy"}`, 400, api.CodeInvalidRequest},
		{"policy zero ttl", "POST", "/v1/policies", token, `{"product_id":"p","name":"n","features":[{"name":"f"}]}`, 400, api.CodeInvalidRequest},
		{"negative seats", "POST", "/v1/policies", token, `{"product_id":"p","name":"n","lease_ttl_seconds":6,"features":[{"name":"f","seats":-2}]}`, 400, api.CodeInvalidRequest},
		{"ttl over ten years", "POST", "/v1/checkout", "", `{"license_key":"K","feature":"cad","holder":{"machine":"m"},"ttl_seconds":9300000000}`, 400, api.CodeInvalidRequest},
		{"policy ttl overflows", "POST", "/v1/policies", token, `{"product_id":"p","name":"n","lease_ttl_seconds":9300000000,"features":[{"name":"f"}]}`, 400, api.CodeInvalidRequest},
		{"borrow hours overflow", "PATCH", "/v1/policies/p", token, `{"max_borrow_hours":3000000}`, 400, api.CodeInvalidRequest},
		{"expiry past 2262", "POST", "/v1/licenses", token, `{"policy_id":"p","customer":"c","expires_at":"9999-01-01T00:00:00Z"}`, 400, api.CodeInvalidRequest},
		{"expiry at the epoch", "POST", "/v1/licenses", token, `{"policy_id":"p","customer":"c","expires_at":"1970-01-01T00:00:00Z"}`, 400, api.CodeInvalidRequest},
		{"audit bad after", "GET", "/v1/audit?after=-3", token, "", 400, api.CodeInvalidRequest},
		{"audit bad limit", "GET", "/v1/audit?limit=0", token, "", 400, api.CodeInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, tc.method, srv.URL+tc.path, tc.auth, tc.body)
			if r.status != tc.status || r.err.Code != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", r.status, r.err.Code, r.err.Message, tc.status, tc.code)
			}
			if r.err.Message == "" {
				t.Fatal("error without a message")
			}
		})
	}
}

func TestBackendErrorsMapToStatuses(t *testing.T) {
	var next error
	srv, _ := newTestServer(t, &fakeBackend{checkout: func(api.CheckoutRequest) (*api.LeaseResponse, error) { return nil, next }})
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{api.Errorf(api.CodeNoSeatsAvailable, "full"), 409, api.CodeNoSeatsAvailable},
		{api.Errorf(api.CodeUnauthorized, "unknown key"), 401, api.CodeUnauthorized},
		{api.Errorf(api.CodeLicenseSuspended, "s"), 403, api.CodeLicenseSuspended},
		{api.Errorf(api.CodeLeaseExpired, "gone"), 410, api.CodeLeaseExpired},
		{&api.Error{Code: api.CodeNoLeader, Message: "x", RetryAfter: 2}, 503, api.CodeNoLeader},
		{errors.New("disk on fire at /secret/path"), 500, api.CodeInternal},
	} {
		next = tc.err
		r := send(t, "POST", srv.URL+"/v1/checkout", "", goodCheckout)
		if r.status != tc.status || r.err.Code != tc.code {
			t.Errorf("%v: got %d %s, want %d %s", tc.err, r.status, r.err.Code, tc.status, tc.code)
		}
		if tc.status == 503 && r.header.Get("Retry-After") != "2" {
			t.Errorf("503 without Retry-After: %q", r.header.Get("Retry-After"))
		}
		if strings.Contains(r.body, "secret") {
			t.Errorf("internal detail leaked: %s", r.body)
		}
	}
}

func TestFollowerForwardsToLeader(t *testing.T) {
	var leaderSaw http.Header
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaderSaw = r.Header.Clone()
		body, _ := io.ReadAll(r.Body)
		if string(body) != goodCheckout || r.URL.Path != "/v1/checkout" {
			t.Errorf("leader got %s %q", r.URL.Path, body)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"error":{"code":"no_seats_available","message":"full"}}`)
	}))
	defer leader.Close()
	srv, reg := newTestServer(t, &fakeBackend{checkout: func(api.CheckoutRequest) (*api.LeaseResponse, error) {
		return nil, &NotLeaderError{LeaderAddr: leader.URL}
	}})
	r := send(t, "POST", srv.URL+"/v1/checkout", "", goodCheckout)
	if r.status != 409 || r.err.Code != api.CodeNoSeatsAvailable {
		t.Fatalf("forwarded answer: %d %s", r.status, r.err.Code)
	}
	if leaderSaw.Get(forwardedHeader) == "" {
		t.Fatal("forwarded request not marked")
	}
	if got := counterValue(t, reg, "tally_forwarded_requests_total"); got != 1 {
		t.Fatalf("forward metric = %v, want 1", got)
	}

	// A request that was already forwarded is not forwarded again.
	r = send(t, "POST", srv.URL+"/v1/checkout", "", goodCheckout, forwardedHeader, "1")
	if r.status != 503 || r.err.Code != api.CodeNoLeader || r.header.Get("Retry-After") == "" {
		t.Fatalf("double forward: %d %s retry-after %q", r.status, r.err.Code, r.header.Get("Retry-After"))
	}
}

// After a leader crash a follower still names the dead leader until the
// election ends; a refused connection makes forward ask again instead of
// failing the client.
func TestForwardFollowsNewLeaderAfterRefusedConnection(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := dead.URL
	dead.Close() // connections to it are now refused
	alive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"lease":{"id":"lse_9"},"token":"t"}`)
	}))
	defer alive.Close()
	var asked []string
	srv, _ := newTestServer(t, &fakeBackend{
		checkout: func(api.CheckoutRequest) (*api.LeaseResponse, error) {
			return nil, &NotLeaderError{LeaderAddr: deadAddr}
		},
		leader: func(stale string) string {
			asked = append(asked, stale)
			return alive.URL
		},
	})
	r := send(t, "POST", srv.URL+"/v1/checkout", "", goodCheckout)
	if r.status != 200 || !strings.Contains(r.body, "lse_9") {
		t.Fatalf("got %d %s, want the new leader's answer", r.status, r.body)
	}
	if len(asked) != 1 || asked[0] != deadAddr {
		t.Fatalf("asked for a new leader with %v, want once with the dead one", asked)
	}
}

func TestNoLeaderKnown(t *testing.T) {
	srv, _ := newTestServer(t, &fakeBackend{checkout: func(api.CheckoutRequest) (*api.LeaseResponse, error) {
		return nil, &NotLeaderError{}
	}})
	r := send(t, "POST", srv.URL+"/v1/checkout", "", goodCheckout)
	if r.status != 503 || r.err.Code != api.CodeNoLeader || r.header.Get("Retry-After") != "1" {
		t.Fatalf("got %d %s retry-after %q", r.status, r.err.Code, r.header.Get("Retry-After"))
	}
}

func TestAdminTokenAndMetrics(t *testing.T) {
	srv, _ := newTestServer(t, &fakeBackend{
		checkout: okCheckout,
		product: func(r api.CreateProductRequest) (*api.Product, error) {
			return &api.Product{ID: "prd_1", Name: r.Name}, nil
		},
	})
	r := send(t, "POST", srv.URL+"/v1/products", token, `{"name":"CAD"}`)
	if r.status != 201 || !strings.Contains(r.body, `"prd_1"`) {
		t.Fatalf("create product: %d %s", r.status, r.body)
	}
	if r := send(t, "POST", srv.URL+"/v1/checkout", "", goodCheckout); r.status != 200 {
		t.Fatalf("checkout: %d %s", r.status, r.body)
	}
	m := send(t, "GET", srv.URL+"/metrics", "", "")
	for _, name := range []string{`tally_checkouts_total{result="ok"} 1`, "tally_http_request_duration_seconds"} {
		if !strings.Contains(m.body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func counterValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

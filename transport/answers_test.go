package transport

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/api"
)

// Every checkout answer is counted by its result, also those refused before
// the backend sees them: the counter must agree with the HTTP histogram.
func TestCheckoutsCountedByResult(t *testing.T) {
	var next error
	srv, reg := newTestServer(t, &fakeBackend{checkout: func(req api.CheckoutRequest) (*api.LeaseResponse, error) {
		if next != nil {
			return nil, next
		}
		return okCheckout(req)
	}})
	bad := []string{
		`{"license_key":`, // malformed
		`{"license_key":"K","bogus":1}`,
		`{"feature":"cad","holder":{"machine":"m"}}`,
		`{"license_key":"K","feature":"cad"}`,
		`{"license_key":"K","feature":"cad","holder":{"machine":"m"},"ttl_seconds":-1}`,
		`{"license_key":"K","feature":"cad","holder":{"machine":"m"},"borrow_hours":-1}`,
	}
	for _, body := range bad {
		if r := send(t, "POST", srv.URL+"/v1/checkout", "", body); r.status != 400 {
			t.Fatalf("%s: status %d", body, r.status)
		}
	}
	huge := `{"license_key":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	if r := send(t, "POST", srv.URL+"/v1/checkout", "", huge); r.status != 413 {
		t.Fatalf("huge body: status %d", r.status)
	}
	send(t, "POST", srv.URL+"/v1/checkout", "", goodCheckout)
	next = api.Errorf(api.CodeNoSeatsAvailable, "full")
	send(t, "POST", srv.URL+"/v1/checkout", "", goodCheckout)
	// Not a checkout: the wrong method on its path.
	send(t, "GET", srv.URL+"/v1/checkout", "", "")

	for result, want := range map[string]float64{
		api.CodeInvalidRequest: float64(len(bad)), api.CodeTooLarge: 1, "ok": 1, api.CodeNoSeatsAvailable: 1,
	} {
		if got := labeledCounter(t, reg, "tally_checkouts_total", "result", result); got != want {
			t.Errorf(`tally_checkouts_total{result=%q} = %v, want %v`, result, got, want)
		}
	}
	if got := counterValue(t, reg, "tally_checkouts_total"); got != float64(len(bad))+3 {
		t.Errorf("tally_checkouts_total sums to %v, want %v", got, len(bad)+3)
	}
}

func labeledCounter(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A path that is not clean (an empty, "." or ".." segment) is no endpoint:
// ServeMux would match its cleaned form, answering 405 for another route
// or redirecting to it (a DELETE to /v1/leases//heartbeat would revoke the
// lease "heartbeat").
func TestUncleanPathIsNotFound(t *testing.T) {
	srv, _ := newTestServer(t, &fakeBackend{})
	for _, tc := range []struct{ method, path, auth string }{
		{"POST", "/v1/leases//heartbeat", ""},
		{"POST", "/v1/leases//checkin", ""},
		{"DELETE", "/v1/leases//heartbeat", token},
		{"GET", "/v1/licenses//leases", token},
		{"POST", "/v1/leases/x/../y/heartbeat", ""},
		{"POST", "/v1/leases/./heartbeat", ""},
		{"GET", "/v1//status", ""},
		{"GET", "/v1/status/", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := send(t, tc.method, srv.URL+tc.path, tc.auth, `{"license_key":"K"}`)
			if r.status != 404 || r.err.Code != api.CodeNotFound {
				t.Fatalf("got %d %q (Location %q), want 404 not_found", r.status, r.err.Code, r.header.Get("Location"))
			}
			if a := r.header.Get("Allow"); a != "" {
				t.Fatalf("Allow: %s on a path that is no endpoint", a)
			}
		})
	}
}

// Every 401 carries a WWW-Authenticate challenge (RFC 7235): Bearer on the
// admin endpoints (RFC 6750), License-Key where the credential is the
// license key in the body.
func TestUnauthorizedCarriesChallenge(t *testing.T) {
	leader, _ := newTestServer(t, &fakeBackend{checkout: func(api.CheckoutRequest) (*api.LeaseResponse, error) {
		return nil, api.Errorf(api.CodeUnauthorized, "unknown license key")
	}})
	follower, _ := newTestServer(t, &fakeBackend{checkout: func(api.CheckoutRequest) (*api.LeaseResponse, error) {
		return nil, &NotLeaderError{LeaderAddr: leader.URL}
	}})
	for _, tc := range []struct {
		name, method, url, auth, body, want string
	}{
		{"admin without token", "POST", leader.URL + "/v1/products", "", `{"name":"x"}`, `Bearer realm="tally"`},
		{"admin wrong token", "GET", leader.URL + "/v1/leases", "wrong", "", `Bearer realm="tally", error="invalid_token"`},
		{"restore without token", "PUT", leader.URL + "/v1/cluster/snapshot", "", "x", `Bearer realm="tally"`},
		{"unknown license key", "POST", leader.URL + "/v1/checkout", "", goodCheckout, `License-Key realm="tally"`},
		{"unknown key, forwarded", "POST", follower.URL + "/v1/checkout", "", goodCheckout, `License-Key realm="tally"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, tc.method, tc.url, tc.auth, tc.body)
			if r.status != 401 || r.err.Code != api.CodeUnauthorized {
				t.Fatalf("got %d %q, want 401 unauthorized", r.status, r.err.Code)
			}
			if got := r.header.Get("WWW-Authenticate"); got != tc.want {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tc.want)
			}
		})
	}
	// Only a 401 carries it.
	r := send(t, "POST", leader.URL+"/v1/checkout", "", `{}`)
	if r.status != 400 || r.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("got %d with WWW-Authenticate %q", r.status, r.header.Get("WWW-Authenticate"))
	}
}

// A policy's product cannot change: the 400 says so rather than calling
// the field unknown.
// An empty PATCH would only write an audit record that changes nothing.
func TestPatchPolicyWithNothingRefused(t *testing.T) {
	srv, _ := newTestServer(t, &fakeBackend{})
	for _, body := range []string{`{}`, `{"name":null}`} {
		r := send(t, "PATCH", srv.URL+"/v1/policies/pol_1", token, body)
		if r.status != 400 || r.err.Code != api.CodeInvalidRequest || !strings.Contains(r.err.Message, "nothing to change") {
			t.Errorf("PATCH %s: got %d %s %q, want 400 invalid_request", body, r.status, r.err.Code, r.err.Message)
		}
	}
}

func TestPatchPolicyProductIDRefused(t *testing.T) {
	srv, _ := newTestServer(t, &fakeBackend{})
	r := send(t, "PATCH", srv.URL+"/v1/policies/pol_1", token, `{"name":"n","product_id":"prd_2"}`)
	if r.status != 400 || r.err.Code != api.CodeInvalidRequest || !strings.Contains(r.err.Message, "product_id cannot be changed") {
		t.Fatalf("got %d %s %q", r.status, r.err.Code, r.err.Message)
	}
}

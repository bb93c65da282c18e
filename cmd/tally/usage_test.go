package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

var usagePeak = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// usageServer answers the license reads and the license PATCH that
// `tally usage` and `tally license update` make, and records the last
// request body.
func usageServer(t *testing.T) (*httptest.Server, func() (string, []byte)) {
	t.Helper()
	lic := api.License{ID: "lic1", Customer: "Acme Corp", PolicyID: "pol1", Status: "active",
		Seats: map[string]api.SeatUsage{"cad": {Total: 3, InUse: 1}, "viewer": {Total: -1, InUse: 0}},
		Usage: map[string]api.FeatureUsage{
			"cad":    {Granted: 12, Denied: 4, PeakInUse: 3, PeakAt: &usagePeak},
			"viewer": {},
		}}
	other := api.License{ID: "lic2", Customer: "Globex", Seats: map[string]api.SeatUsage{"cad": {Total: 1}},
		Usage: map[string]api.FeatureUsage{"cad": {Granted: 1, PeakInUse: 1, PeakAt: &usagePeak}}}
	var mu sync.Mutex
	var last string
	var body []byte
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/licenses", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.LicenseList{Licenses: []api.License{lic, other}})
	})
	mux.HandleFunc("GET /v1/licenses/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "lic1" {
			writeJSON(w, 404, api.ErrorResponse{Error: api.Error{Code: api.CodeNotFound, Message: "no such license"}})
			return
		}
		writeJSON(w, 200, lic)
	})
	mux.HandleFunc("PATCH /v1/licenses/{id}", func(w http.ResponseWriter, r *http.Request) {
		var req api.UpdateLicenseRequest
		_ = json.Unmarshal(body, &req)
		out := lic
		out.Overrides = req.Overrides
		if out.Overrides != nil && len(out.Overrides.Seats) == 0 && out.Overrides.LeaseTTLSeconds == 0 {
			out.Overrides = nil
		}
		writeJSON(w, 200, out)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last, body = r.Method+" "+r.URL.Path, b
		mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() (string, []byte) {
		mu.Lock()
		defer mu.Unlock()
		return last, body
	}
}

func TestUsageCommand(t *testing.T) {
	srv, last := usageServer(t)
	addr := "--addr=" + srv.URL

	code, out, errOut := runCLI(t, "usage", "lic1", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"LICENSE CUSTOMER FEATURE IN_USE GRANTED DENIED PEAK PEAK_AT",
		"lic1 Acme Corp cad 1/3 12 4 3 2026-03-04T05:06:07Z",
		"lic1 Acme Corp viewer 0/- 0 0 0 -",
	} {
		if !strings.Contains(collapseSpaces(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if req, _ := last(); req != "GET /v1/licenses/lic1" {
		t.Errorf("request %s", req)
	}

	code, out, _ = runCLI(t, "usage", addr)
	if code != 0 || !strings.Contains(collapseSpaces(out), "lic2 Globex cad 0/1 1 0 1 2026-03-04T05:06:07Z") {
		t.Fatalf("all licenses: exit %d\n%s", code, out)
	}
	if req, _ := last(); req != "GET /v1/licenses" {
		t.Errorf("request %s", req)
	}

	code, out, _ = runCLI(t, "usage", "lic1", addr, "--json")
	var report usageReport
	if err := json.Unmarshal([]byte(out), &report); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if len(report.Licenses) != 1 || report.Licenses[0].Usage["cad"].Denied != 4 ||
		!report.Licenses[0].Usage["cad"].PeakAt.Equal(usagePeak) || report.Licenses[0].Seats["cad"].Total != 3 {
		t.Fatalf("--json report = %+v", report)
	}
	if !strings.Contains(out, `"peak_in_use": 3`) {
		t.Fatalf("--json lacks the API field names:\n%s", out)
	}

	if code, _, errOut := runCLI(t, "usage", "nope", addr); code == 0 || !strings.Contains(errOut, "not_found") {
		t.Fatalf("unknown license: exit %d, stderr %q", code, errOut)
	}
}

func TestLicenseUpdateCommand(t *testing.T) {
	srv, last := usageServer(t)
	addr := "--addr=" + srv.URL
	code, out, errOut := runCLI(t, "license", "update", "lic1", "--seats", "cad=5,viewer=-1", "--lease-ttl", "2m", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	req, body := last()
	if req != "PATCH /v1/licenses/lic1" ||
		string(body) != `{"overrides":{"seats":{"cad":5,"viewer":-1},"lease_ttl_seconds":120}}` {
		t.Fatalf("request %s %s", req, body)
	}
	if !strings.Contains(out, "Updated license lic1: overrides cad=5, viewer=-1, lease_ttl=2m0s") {
		t.Fatalf("output %q", out)
	}
	if code, out, _ := runCLI(t, "license", "update", "lic1", "--clear", addr); code != 0 || !strings.Contains(out, "overrides none") {
		t.Fatalf("--clear: exit %d %q", code, out)
	}
	if _, body := last(); string(body) != `{"overrides":{}}` {
		t.Fatalf("--clear sent %s", body)
	}
	for _, bad := range [][]string{
		{"license", "update", "lic1"},
		{"license", "update", "lic1", "--clear", "--seats", "cad=1"},
		{"license", "update", "lic1", "--seats", "cad=-2"},
		{"license", "update", "lic1", "--seats", "cad"},
	} {
		if code, _, _ := runCLI(t, append(bad, addr)...); code == 0 {
			t.Errorf("%v: exit 0", bad)
		}
	}
}

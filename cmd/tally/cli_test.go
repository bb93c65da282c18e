package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// fakeServer answers the API from canned objects and records the last
// request.
type fakeServer struct {
	*httptest.Server
	mu   sync.Mutex
	last recorded
}

type recorded struct {
	method, path, query, auth string
	body                      []byte
}

var (
	seats3    = 3
	t0        = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tExpires  = time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	aPolicy   = api.Policy{ID: "pol1", ProductID: "prod1", Name: "CAD floating", Features: []api.Feature{{Name: "cad", Seats: &seats3}, {Name: "viewer"}}, LeaseTTLSeconds: 60, SeatRule: "process", UpdatedAt: t0}
	aLicense  = api.License{ID: "lic1", Key: "TALLY-KEY-1", PolicyID: "pol1", ProductID: "prod1", Customer: "Acme Corp", Status: "active", CreatedAt: t0, Seats: map[string]api.SeatUsage{"cad": {Total: 3, InUse: 1}, "viewer": {Total: -1, InUse: 2}}}
	aLease    = api.Lease{ID: "lease1", LicenseID: "lic1", Feature: "cad", Holder: api.Holder{Machine: "ws-7", User: "ana"}, IssuedAt: t0, ExpiresAt: tExpires}
	aLeaseRsp = api.LeaseResponse{Lease: aLease, Token: "signed.token.value"}
)

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	mux := http.NewServeMux()
	ok := func(status int, v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { writeJSON(w, status, v) }
	}
	mux.HandleFunc("POST /v1/products", ok(201, api.Product{ID: "prod1", Name: "Acme CAD", CreatedAt: t0}))
	mux.HandleFunc("GET /v1/products", ok(200, api.ProductList{Products: []api.Product{
		{ID: "prod1", Name: "Acme CAD", CreatedAt: t0}, {ID: "prod-long-id-2", Name: "Viewer", CreatedAt: t0}}}))
	mux.HandleFunc("POST /v1/policies", ok(201, aPolicy))
	mux.HandleFunc("PATCH /v1/policies/{id}", ok(200, aPolicy))
	mux.HandleFunc("GET /v1/policies/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "pol1" {
			writeJSON(w, 404, api.ErrorResponse{Error: api.Error{Code: api.CodeNotFound, Message: "no policy " + r.PathValue("id")}})
			return
		}
		writeJSON(w, 200, aPolicy)
	})
	mux.HandleFunc("POST /v1/licenses", ok(201, aLicense))
	mux.HandleFunc("GET /v1/licenses", ok(200, api.LicenseList{Licenses: []api.License{aLicense}}))
	mux.HandleFunc("POST /v1/licenses/{id}/suspend", ok(200, api.License{ID: "lic1", Status: "suspended"}))
	mux.HandleFunc("POST /v1/licenses/{id}/export", ok(200, api.LicenseExport{LicenseFile: "LICENSE FILE\n", ExpiresAt: tExpires}))
	mux.HandleFunc("GET /v1/leases", ok(200, api.LeaseList{Leases: []api.Lease{aLease}}))
	mux.HandleFunc("DELETE /v1/leases/{id}", ok(200, struct{}{}))
	mux.HandleFunc("GET /v1/audit", ok(200, api.AuditList{Records: []api.AuditRecord{{Index: 7, Time: t0, Type: "lease.checkout", LicenseID: "lic1", LeaseID: "lease1", Feature: "cad"}}}))
	mux.HandleFunc("POST /v1/checkout", ok(200, aLeaseRsp))
	mux.HandleFunc("POST /v1/leases/{id}/checkin", ok(200, struct{}{}))
	mux.HandleFunc("POST /v1/validate", func(w http.ResponseWriter, r *http.Request) {
		var req api.ValidateRequest
		_ = json.NewDecoder(bytes.NewReader(f.lastBody())).Decode(&req)
		if req.LicenseKey == "SUSPENDED" {
			writeJSON(w, 200, api.ValidateResponse{Valid: false, Code: api.CodeLicenseSuspended, NodeID: "n1"})
			return
		}
		writeJSON(w, 200, api.ValidateResponse{Valid: true, License: &aLicense, Seats: aLicense.Seats, NodeID: "n1", AppliedIndex: 42, Consistency: "stale"})
	})
	mux.HandleFunc("GET /v1/status", ok(200, api.Status{NodeID: "n1", State: "leader", Leader: api.LeaderInfo{ID: "n1"}, Term: 3, CommitIndex: 42, AppliedIndex: 42}))
	mux.HandleFunc("GET /v1/cluster/raft", ok(200, api.RaftConfiguration{Servers: []api.RaftServer{
		{ID: "n1", Address: "127.0.0.1:7201", Suffrage: "voter", Leader: true}, {ID: "n2", Address: "127.0.0.1:7202", Suffrage: "voter"}}}))
	mux.HandleFunc("GET /v1/cluster/snapshot", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte("SNAPSHOT"))
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.last = recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), body}
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) lastRequest() recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakeServer) lastBody() []byte { return f.lastRequest().body }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// runCLI runs one command line in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTableAndJSONOutput(t *testing.T) {
	srv := newFakeServer(t)
	addr := "--addr=" + srv.URL
	tests := []struct {
		name      string
		args      []string
		wantLines []string // each must appear, with runs of spaces collapsed
		wantPath  string
	}{
		{"product list", []string{"product", "list"}, []string{"ID NAME CREATED", "prod1 Acme CAD 2026-01-02T03:04:05Z"}, "GET /v1/products"},
		{"policy show", []string{"policy", "show", "pol1"}, []string{"features cad=3, viewer", "lease_ttl 1m0s"}, "GET /v1/policies/pol1"},
		{"license list", []string{"license", "list"}, []string{"ID CUSTOMER POLICY STATUS EXPIRES SEATS", "lic1 Acme Corp pol1 active never cad 1/3, viewer 2/-"}, "GET /v1/licenses"},
		{"license create", []string{"license", "create", "--policy", "pol1", "--customer", "Acme Corp", "--expires", "2027-01-31", "--meta", "contract=C-1"}, []string{"License key: TALLY-KEY-1"}, "POST /v1/licenses"},
		{"license suspend", []string{"license", "suspend", "lic1"}, []string{"Suspended license lic1 (status suspended)"}, "POST /v1/licenses/lic1/suspend"},
		{"lease list", []string{"lease", "list", "--license", "lic1"}, []string{"lease1 lic1 cad ws-7 ana"}, "GET /v1/leases"},
		{"lease revoke", []string{"lease", "revoke", "lease1"}, []string{"Revoked lease lease1"}, "DELETE /v1/leases/lease1"},
		{"audit list", []string{"audit", "list", "--after", "6", "--limit", "10"}, []string{"7 2026-01-02T03:04:05Z lease.checkout lic1 lease1 cad -"}, "GET /v1/audit"},
		{"checkout", []string{"checkout", "--key", "K", "--feature", "cad"}, []string{"lease_id lease1", "token signed.token.value"}, "POST /v1/checkout"},
		{"checkin", []string{"checkin", "lease1", "--key", "K"}, []string{"Checked in lease lease1"}, "POST /v1/leases/lease1/checkin"},
		{"list-peers", []string{"operator", "raft", "list-peers"}, []string{"ID ADDRESS SUFFRAGE LEADER", "n1 127.0.0.1:7201 voter yes", "n2 127.0.0.1:7202 voter -"}, "GET /v1/cluster/raft"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append(tt.args, addr)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			collapsed := collapseSpaces(out)
			for _, want := range tt.wantLines {
				if !strings.Contains(collapsed, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if r := srv.lastRequest(); r.method+" "+r.path != tt.wantPath {
				t.Errorf("request %s %s, want %s", r.method, r.path, tt.wantPath)
			}

			code, out, errOut = runCLI(t, append(tt.args, addr, "--json")...)
			if code != 0 {
				t.Fatalf("--json: exit %d, stderr %q", code, errOut)
			}
			var v any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Errorf("--json output is not JSON: %v\n%s", err, out)
			}
			if !strings.Contains(out, "\n  ") && out != "{}\n" {
				t.Errorf("--json output is not indented:\n%s", out)
			}
		})
	}
}

func collapseSpaces(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

func TestTableColumnsAlign(t *testing.T) {
	srv := newFakeServer(t)
	_, out, _ := runCLI(t, "product", "list", "--addr", srv.URL)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header and 2 rows, got:\n%s", out)
	}
	col := strings.Index(lines[0], "NAME")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("column NAME at %d not aligned in %q", col, l)
		}
	}
}

func TestRequestBodies(t *testing.T) {
	srv := newFakeServer(t)
	code, _, errOut := runCLI(t, "policy", "create", "--addr", srv.URL, "--product", "prod1", "--name", "CAD",
		"--feature", "cad=3", "--feature", "viewer", "--ttl", "90s", "--seat-rule", "machine", "--max-borrow-hours", "72")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var pol api.CreatePolicyRequest
	if err := json.Unmarshal(srv.lastBody(), &pol); err != nil {
		t.Fatal(err)
	}
	if len(pol.Features) != 2 || pol.Features[0].Name != "cad" || pol.Features[0].Seats == nil || *pol.Features[0].Seats != 3 ||
		pol.Features[1].Name != "viewer" || pol.Features[1].Seats != nil {
		t.Errorf("features = %s", srv.lastBody())
	}
	if pol.LeaseTTLSeconds != 90 || pol.SeatRule != "machine" || pol.MaxBorrowHours != 72 || pol.ProductID != "prod1" {
		t.Errorf("policy request = %+v", pol)
	}

	// update sends only what was given.
	code, _, errOut = runCLI(t, "policy", "update", "pol1", "--addr", srv.URL, "--ttl", "2m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := strings.TrimSpace(string(srv.lastBody())); got != `{"lease_ttl_seconds":120}` {
		t.Errorf("update body = %s", got)
	}

	code, _, errOut = runCLI(t, "license", "create", "--addr", srv.URL, "--policy", "pol1", "--customer", "Acme",
		"--expires", "2027-01-31", "--meta", "contract=C-1", "--meta", "note=a=b")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var lic api.CreateLicenseRequest
	if err := json.Unmarshal(srv.lastBody(), &lic); err != nil {
		t.Fatal(err)
	}
	if lic.ExpiresAt == nil || !lic.ExpiresAt.Equal(time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)) ||
		lic.Metadata["contract"] != "C-1" || lic.Metadata["note"] != "a=b" || lic.Overrides != nil {
		t.Errorf("license request = %s", srv.lastBody())
	}

	// A license created with its own seats and lease TTL.
	code, _, errOut = runCLI(t, "license", "create", "--addr", srv.URL, "--policy", "pol1", "--customer", "Beta",
		"--seats", "cad=5", "--seats", "viewer=-1", "--lease-ttl", "2m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lic = api.CreateLicenseRequest{}
	if err := json.Unmarshal(srv.lastBody(), &lic); err != nil {
		t.Fatal(err)
	}
	if o := lic.Overrides; o == nil || len(o.Seats) != 2 || o.Seats["cad"] != 5 || o.Seats["viewer"] != -1 || o.LeaseTTLSeconds != 120 {
		t.Errorf("license request with overrides = %s", srv.lastBody())
	}

	code, _, errOut = runCLI(t, "checkout", "--addr", srv.URL, "--key", "K", "--feature", "cad", "--machine", "ws-9",
		"--user", "bo", "--ttl", "1500ms", "--request-id", "req-1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var co api.CheckoutRequest
	if err := json.Unmarshal(srv.lastBody(), &co); err != nil {
		t.Fatal(err)
	}
	if co.LicenseKey != "K" || co.Feature != "cad" || co.Holder.Machine != "ws-9" || co.Holder.User != "bo" ||
		co.TTLSeconds != 2 || co.RequestID != "req-1" {
		t.Errorf("checkout request = %+v", co)
	}

	runCLI(t, "audit", "list", "--addr", srv.URL, "--after", "6", "--limit", "10", "--consistency", "stale")
	if q := srv.lastRequest().query; q != "after=6&consistency=stale&limit=10" {
		t.Errorf("audit query = %q", q)
	}
}

func TestParseFeature(t *testing.T) {
	tests := []struct {
		in      string
		want    string // formatFeatures of the result
		wantErr bool
	}{
		{"cad=3", "cad=3", false},
		{"viewer", "viewer", false},
		{"cad=0", "cad=0", false},
		{"cad=3,viewer", "cad=3, viewer", false},
		{"cad=x", "", true},
		{"cad=-1", "", true},
		{"=3", "", true},
		{"", "", true},
		{"cad=3,cad=4", "", true},
	}
	for _, tt := range tests {
		var f featureList
		err := f.Set(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Set(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && f.String() != tt.want {
			t.Errorf("Set(%q) = %q, want %q", tt.in, f.String(), tt.want)
		}
	}
}

func TestEnvBinding(t *testing.T) {
	srv := newFakeServer(t)
	t.Setenv("TALLY_ADDR", srv.URL)
	t.Setenv("TALLY_TOKEN", "from-env")
	code, _, errOut := runCLI(t, "product", "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := srv.lastRequest().auth; got != "Bearer from-env" {
		t.Errorf("Authorization = %q, want Bearer from-env", got)
	}
	// The command line wins over the environment.
	runCLI(t, "product", "list", "--token", "from-flag")
	if got := srv.lastRequest().auth; got != "Bearer from-flag" {
		t.Errorf("Authorization = %q, want Bearer from-flag", got)
	}
	// Multi-word flags of an admin command take its command path:
	// --seat-rule of policy create is TALLY_POLICY_CREATE_SEAT_RULE.
	t.Setenv("TALLY_POLICY_CREATE_SEAT_RULE", "user")
	t.Setenv("TALLY_POLICY_CREATE_MAX_BORROW_HOURS", "12")
	code, _, errOut = runCLI(t, "policy", "create", "--product", "p", "--name", "n", "--feature", "cad=1", "--ttl", "60s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var pol api.CreatePolicyRequest
	_ = json.Unmarshal(srv.lastBody(), &pol)
	if pol.SeatRule != "user" || pol.MaxBorrowHours != 12 {
		t.Errorf("env not bound: %+v", pol)
	}
	// A bad value in the environment names the variable.
	t.Setenv("TALLY_POLICY_CREATE_SEAT_RULE", "planet")
	code, _, errOut = runCLI(t, "policy", "create", "--product", "p", "--name", "n", "--feature", "cad=1", "--ttl", "60s")
	if code != 2 || !strings.Contains(errOut, "$TALLY_POLICY_CREATE_SEAT_RULE") {
		t.Errorf("bad env value: exit %d, stderr %q", code, errOut)
	}
	// Required flags are satisfied from the environment too.
	t.Setenv("TALLY_KEY", "K")
	if code, _, errOut := runCLI(t, "checkin", "lease1"); code != 0 {
		t.Errorf("checkin with TALLY_KEY: exit %d, %s", code, errOut)
	}
}

func TestHelpShowsEnvForms(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		want, lack []string
	}{
		{[]string{"checkout", "--help"},
			[]string{"[$TALLY_KEY]", "[$TALLY_FEATURE]", "[$TALLY_TTL]", "[$TALLY_REQUEST_ID]", "[$TALLY_ADDR]", "[$TALLY_TOKEN]"}, nil},
		{[]string{"policy", "update", "--help"},
			[]string{"[$TALLY_POLICY_UPDATE_FEATURE]", "[$TALLY_POLICY_UPDATE_TTL]", "[$TALLY_POLICY_UPDATE_SEAT_RULE]", "[$TALLY_ADDR]"},
			[]string{"[$TALLY_FEATURE]", "[$TALLY_TTL]"}},
		{[]string{"license", "export", "--help"},
			[]string{"[$TALLY_LICENSE_EXPORT_OUTPUT]", "[$TALLY_LICENSE_EXPORT_MACHINE]"}, []string{"[$TALLY_MACHINE]"}},
		{[]string{"audit", "export", "--help"}, []string{"[$TALLY_AUDIT_EXPORT_OUTPUT]"}, nil},
		{[]string{"agent", "--help"}, []string{"[$TALLY_DATA_DIR]", "[$TALLY_BOOTSTRAP_EXPECT]"}, nil},
		// Cobra adds completion itself; its flags get their form too.
		{[]string{"completion", "bash", "--help"}, []string{"[$TALLY_COMPLETION_BASH_NO_DESCRIPTIONS]"}, nil},
	} {
		code, out, _ := runCLI(t, tc.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d", tc.args, code)
		}
		for _, want := range tc.want {
			if !strings.Contains(out, want) {
				t.Errorf("%v lacks %s:\n%s", tc.args, want, out)
			}
		}
		for _, lack := range tc.lack {
			if strings.Contains(out, lack) {
				t.Errorf("%v shows %s:\n%s", tc.args, lack, out)
			}
		}
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	srv := newFakeServer(t)
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantInErr string
	}{
		{"bad duration", []string{"policy", "create", "--product", "p", "--name", "n", "--feature", "cad=1", "--ttl", "abc"}, 2, `invalid argument "abc" for "--ttl" flag`},
		{"bad feature", []string{"policy", "create", "--product", "p", "--name", "n", "--feature", "cad=x", "--ttl", "60s"}, 2, `seats of "cad" must be a whole number`},
		{"bad seat rule", []string{"policy", "update", "pol1", "--seat-rule", "planet"}, 2, "must be one of process, machine, user"},
		{"bad expires", []string{"license", "create", "--policy", "p", "--customer", "c", "--expires", "tomorrow"}, 2, "want an RFC 3339 time"},
		{"missing flag", []string{"checkout", "--feature", "cad"}, 2, `required flag(s) "key" not set`},
		{"extra arg", []string{"product", "list", "extra"}, 2, "unknown command"},
		{"unknown sub", []string{"product", "bogus"}, 2, `unknown command "bogus"`},
		{"nothing to update", []string{"policy", "update", "pol1"}, 2, "nothing to update"},
		{"short ttl", []string{"checkout", "--key", "K", "--feature", "cad", "--ttl", "10ms"}, 2, "--ttl must be at least 1s"},
		{"server error", []string{"policy", "show", "nope"}, 1, "Error: not_found: no policy nope"},
		{"not valid", []string{"validate", "--key", "SUSPENDED"}, 1, "Error: license_suspended: license is not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, append(tt.args, "--addr", srv.URL)...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantInErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, tt.wantCode, tt.wantInErr)
			}
		})
	}
	if code, out, errOut := runCLI(t, "validate", "--key", "GOOD", "--feature", "cad", "--addr", srv.URL); code != 0 ||
		!strings.Contains(collapseSpaces(out), "valid true") {
		t.Errorf("valid license: exit %d, out %q, err %q", code, out, errOut)
	}
}

func TestStatusQueriesEveryNode(t *testing.T) {
	srv := newFakeServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	code, out, errOut := runCLI(t, "status", "--addr", srv.URL+","+dead)
	if code != 1 {
		t.Errorf("exit %d with a node down, want 1", code)
	}
	got := collapseSpaces(out)
	for _, want := range []string{
		"NODE_ID ADDR STATE LEADER TERM COMMIT APPLIED LAST_CONTACT",
		"n1 " + srv.URL + " leader n1 3 42 42 -",
		"- " + dead + " unreachable - - - - -",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "1 of 2 nodes unreachable") {
		t.Errorf("stderr = %q", errOut)
	}

	code, out, _ = runCLI(t, "status", "--json", "--addr", srv.URL)
	var rows []nodeStatus
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0].Status.NodeID != "n1" {
		t.Errorf("status --json: exit %d, %s", code, out)
	}
}

func TestSnapshotSave(t *testing.T) {
	srv := newFakeServer(t)
	path := filepath.Join(t.TempDir(), "backup.snap")
	code, out, errOut := runCLI(t, "operator", "snapshot", "save", path, "--addr", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "SNAPSHOT" {
		t.Errorf("snapshot file = %q, %v", b, err)
	}
	if !strings.Contains(out, "(8 bytes)") {
		t.Errorf("output = %q", out)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

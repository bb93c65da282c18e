package main

import (
	"encoding/json"
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

// An empty id is a bad command line, not a request for /v1/leases//heartbeat.
func TestEmptyArgumentIsUsageError(t *testing.T) {
	srv := newFakeServer(t)
	for _, argv := range [][]string{
		{"heartbeat", "", "--key", "K"},
		{"checkin", " ", "--key", "K"},
		{"lease", "revoke", ""},
		{"license", "show", ""},
		{"license", "suspend", ""},
		{"license", "export", "", "--until", "2027-01-01"},
		{"policy", "update", "", "--ttl", "1m"},
		{"product", "show", ""},
		{"operator", "raft", "remove-peer", ""},
	} {
		before := srv.lastRequest()
		code, _, errOut := runCLI(t, append(argv, "--addr", srv.URL)...)
		if code != exitUsage || !strings.Contains(errOut, "must not be empty") {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and must not be empty", argv, code, errOut)
		}
		if after := srv.lastRequest(); after.method+after.path != before.method+before.path || string(after.body) != string(before.body) {
			t.Errorf("%q sent %s %s", argv, after.method, after.path)
		}
	}
	if _, _, errOut := runCLI(t, "heartbeat", "", "--key", "K", "--addr", srv.URL); !strings.Contains(errOut, "LEASE_ID must not be empty") {
		t.Errorf("heartbeat '': stderr %q, want it to name LEASE_ID", errOut)
	}
}

func TestHelpTexts(t *testing.T) {
	_, out, _ := runCLI(t, "policy", "create", "--help")
	for _, flag := range []string{"--name", "--ttl", "--product"} {
		if !lineWith(out, flag, "(required)") {
			t.Errorf("policy create --help: %s not marked required:\n%s", flag, out)
		}
	}
	if !lineWith(out, "--feature", "(at least one required)") {
		t.Errorf("policy create --help: --feature not marked required:\n%s", out)
	}
	// policy update takes any of them.
	if _, out, _ := runCLI(t, "policy", "update", "--help"); strings.Contains(out, "required") {
		t.Errorf("policy update --help says required:\n%s", out)
	}

	// The client flags do nothing for a server.
	for _, cmd := range []string{"agent", "dev"} {
		code, out, _ := runCLI(t, cmd, "--help")
		if code != 0 {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		for _, flag := range []string{"--addr", "--token", "--json"} {
			if strings.Contains(out, flag) {
				t.Errorf("%s --help lists %s:\n%s", cmd, flag, out)
			}
		}
		if !strings.Contains(out, "--data-dir") {
			t.Errorf("%s --help lacks --data-dir:\n%s", cmd, out)
		}
	}
	// Hiding them there leaves them in every other command's help.
	if _, out, _ := runCLI(t, "checkout", "--help"); !strings.Contains(out, "--addr") || !strings.Contains(out, "--json") {
		t.Errorf("checkout --help lacks the global flags:\n%s", out)
	}
}

func lineWith(out, flag, text string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, flag+" ") && strings.Contains(l, text) {
			return true
		}
	}
	return false
}

// A bad agent command line is a usage error found before anything touches
// the disk.
func TestAgentChecksFlagsBeforeTouchingDisk(t *testing.T) {
	t.Setenv("TALLY_DATA_DIR", "")
	t.Setenv("TALLY_ADMIN_TOKEN_FILE", "")
	code, _, errOut := runCLI(t, "agent", "--node-id", "n1")
	if code != exitUsage || !strings.Contains(errOut, "--data-dir is required") || strings.Contains(errOut, "admin token") {
		t.Errorf("agent without --data-dir: exit %d, stderr %q", code, errOut)
	}

	dir := filepath.Join(t.TempDir(), "x")
	code, _, errOut = runCLI(t, "agent", "--node-id", "n1", "--data-dir", dir, "--bootstrap-expect", "2")
	if code != exitUsage || !strings.Contains(errOut, "bootstrap-expect 2") {
		t.Errorf("agent --bootstrap-expect 2: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused command line left %s behind (%v)", dir, err)
	}

	tokenFile := filepath.Join(t.TempDir(), "token")
	code, _, errOut = runCLI(t, "agent", "--node-id", "n1", "--data-dir", dir, "--admin-token-file", tokenFile, "--raft-profile", "wan")
	if code != exitUsage || !strings.Contains(errOut, "--raft-profile") {
		t.Errorf("agent --raft-profile wan: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
		t.Errorf("a refused command line created the token file (%v)", err)
	}
}

func TestExpiredLicenseShownExpired(t *testing.T) {
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	expired := aLicense
	expired.ID, expired.ExpiresAt = "lic-old", &past
	suspended := expired
	suspended.ID, suspended.Status = "lic-susp", api.StatusSuspended
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/licenses":
			writeJSON(w, 200, api.LicenseList{Licenses: []api.License{aLicense, expired, suspended}})
		default:
			writeJSON(w, 200, expired)
		}
	}))
	t.Cleanup(srv.Close)

	_, out, _ := runCLI(t, "license", "list", "--addr", srv.URL)
	got := collapseSpaces(out)
	for _, want := range []string{"lic1 Acme Corp pol1 active never", "lic-old Acme Corp pol1 expired " + fmtTime(past), "lic-susp Acme Corp pol1 suspended"} {
		if !strings.Contains(got, want) {
			t.Errorf("license list lacks %q:\n%s", want, out)
		}
	}
	if _, out, _ := runCLI(t, "license", "show", "lic-old", "--addr", srv.URL); !strings.Contains(collapseSpaces(out), "status expired") {
		t.Errorf("license show:\n%s", out)
	}
	// --json keeps the API's object as it is.
	if _, out, _ := runCLI(t, "license", "show", "lic-old", "--json", "--addr", srv.URL); !strings.Contains(out, `"status": "active"`) {
		t.Errorf("license show --json:\n%s", out)
	}
}

// demoServer holds products, policies and licenses in memory and counts
// what is created.
type demoServer struct {
	mu       sync.Mutex
	products []api.Product
	policies []api.Policy
	licenses []api.License
	created  map[string]int
}

func (d *demoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(d.products) + len(d.policies) + len(d.licenses)
	id := func(prefix string) string { return prefix + string(rune('a'+n)) }
	switch r.Method + " " + r.URL.Path {
	case "GET /v1/products":
		writeJSON(w, 200, api.ProductList{Products: d.products})
	case "GET /v1/policies":
		writeJSON(w, 200, api.PolicyList{Policies: d.policies})
	case "GET /v1/licenses":
		writeJSON(w, 200, api.LicenseList{Licenses: d.licenses})
	case "POST /v1/products":
		d.created["product"]++
		p := api.Product{ID: id("prd_"), Name: demoProduct}
		d.products = append(d.products, p)
		writeJSON(w, 201, p)
	case "POST /v1/policies":
		d.created["policy"]++
		var req api.CreatePolicyRequest
		_ = decodeBody(r, &req)
		p := api.Policy{ID: id("pol_"), ProductID: req.ProductID, Name: req.Name}
		d.policies = append(d.policies, p)
		writeJSON(w, 201, p)
	case "POST /v1/licenses":
		d.created["license"]++
		var req api.CreateLicenseRequest
		_ = decodeBody(r, &req)
		l := api.License{ID: id("lic_"), Key: "KEY-" + id(""), PolicyID: req.PolicyID, Customer: req.Customer, Status: api.StatusActive}
		d.licenses = append(d.licenses, l)
		writeJSON(w, 201, l)
	default:
		writeJSON(w, 404, api.ErrorResponse{Error: api.Error{Code: api.CodeNotFound, Message: r.URL.Path}})
	}
}

// A suspended demo license gets a new license on the existing demo policy,
// not a second demo product and policy.
func TestDemoReusesProductAndPolicy(t *testing.T) {
	d := &demoServer{created: map[string]int{}}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)

	demo := func() string {
		t.Helper()
		code, out, errOut := runCLI(t, "demo", "--addr", srv.URL, "--token", "tok")
		if code != 0 {
			t.Fatalf("demo: exit %d: %s", code, errOut)
		}
		return out
	}
	demo()
	if d.created["product"] != 1 || d.created["policy"] != 1 || d.created["license"] != 1 {
		t.Fatalf("first run created %v, want one of each", d.created)
	}
	firstKey := d.licenses[0].Key

	demo() // the active demo license is found: nothing new
	if d.created["license"] != 1 {
		t.Fatalf("second run created %v", d.created)
	}

	d.mu.Lock()
	d.licenses[0].Status = api.StatusSuspended
	d.mu.Unlock()
	out := demo()
	if d.created["product"] != 1 || d.created["policy"] != 1 || d.created["license"] != 2 {
		t.Errorf("after a suspension created %v, want only a second license", d.created)
	}
	if l := d.licenses[1]; l.PolicyID != d.policies[0].ID || l.Key == firstKey || !strings.Contains(out, l.Key) {
		t.Errorf("new license %+v on policy %s; banner:\n%s", l, d.policies[0].ID, out)
	}
}

func decodeBody(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// fakeCluster is one node's API with just enough state for the scenarios:
// licenses, policies, live leases with expiry. failures makes every k-th
// measured request of a route answer an error, and the fake counts what it
// answered, so a test compares bench's counts with the truth.
//
// Measured requests are those of the load driver; the SDK (setup, polls)
// is told apart by its User-Agent and not counted.
type fakeCluster struct {
	srv *httptest.Server

	mu       sync.Mutex
	failures map[string]failure
	seen     map[string]int            // measured requests per route
	ok       map[string]int            // 2xx (and valid) answers per route
	errs     map[string]map[string]int // error answers per route and code
	policies map[string]*fakePolicy
	licenses map[string]*fakeLicense // by key
	leases   map[string]*fakeLease
	nextID   int
	cpu      float64
	commit   uint64
	// gone are leases answered lease_expired; zombies counts heartbeats
	// that still came for one of them.
	gone    map[string]bool
	zombies int

	// checkoutDelay is how long each checkout takes before it is decided
	// (set before the run); stormDue records the deadline of every
	// expiry-storm lease.
	checkoutDelay time.Duration
	stormDue      []time.Time
}

type failure struct {
	every  int
	status int
	code   string
}

type fakePolicy struct {
	seats int
	ttl   time.Duration
}

type fakeLicense struct {
	id, key, policy string
}

type fakeLease struct {
	key     string
	expires time.Time
}

func newFakeCluster(t *testing.T, failures map[string]failure) *fakeCluster {
	t.Helper()
	f := &fakeCluster{
		failures: failures, seen: map[string]int{}, ok: map[string]int{}, errs: map[string]map[string]int{},
		policies: map[string]*fakePolicy{}, licenses: map[string]*fakeLicense{}, leases: map[string]*fakeLease{},
		gone: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/products", func(w http.ResponseWriter, r *http.Request) {
		writeFake(w, 201, api.Product{ID: "prod1", Name: "bench"})
	})
	mux.HandleFunc("POST /v1/policies", f.createPolicy)
	mux.HandleFunc("PATCH /v1/policies/{id}", f.patchPolicy)
	mux.HandleFunc("POST /v1/licenses", f.createLicense)
	mux.HandleFunc("POST /v1/checkout", f.checkout)
	mux.HandleFunc("POST /v1/leases/{id}/heartbeat", f.heartbeat)
	mux.HandleFunc("POST /v1/leases/{id}/checkin", f.checkin)
	mux.HandleFunc("POST /v1/validate", f.validate)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.commit += 3
		st := api.Status{NodeID: "n1", State: "leader", Leader: api.LeaderInfo{ID: "n1", HTTPAddr: r.Host}, CommitIndex: f.commit}
		f.mu.Unlock()
		writeFake(w, 200, st)
	})
	mux.HandleFunc("GET /v1/cluster/members", func(w http.ResponseWriter, r *http.Request) {
		writeFake(w, 200, api.MemberList{Members: []api.Member{{ID: "n1", HTTPAddr: r.Host, Status: "alive"}}})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.cpu += 0.25
		cpu := f.cpu
		f.mu.Unlock()
		fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n", cpu)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeFake(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// measured reports whether r comes from the load driver, not the SDK.
func measured(r *http.Request) bool { return !strings.HasPrefix(r.UserAgent(), "tally-go-client") }

// inject counts a measured request of route and answers its planned
// failure, if this is one; it returns true when it answered. Call with mu held.
func (f *fakeCluster) inject(w http.ResponseWriter, r *http.Request, route string) bool {
	if !measured(r) {
		return false
	}
	f.seen[route]++
	fl, ok := f.failures[route]
	if !ok || f.seen[route]%fl.every != 0 {
		return false
	}
	f.countErr(route, fl.code)
	writeFake(w, fl.status, api.ErrorResponse{Error: api.Error{Code: fl.code, Message: "planned by the test"}})
	return true
}

func (f *fakeCluster) countErr(route, code string) {
	if f.errs[route] == nil {
		f.errs[route] = map[string]int{}
	}
	f.errs[route][code]++
}

func (f *fakeCluster) countOK(r *http.Request, route string) {
	if measured(r) {
		f.ok[route]++
	}
}

func (f *fakeCluster) id(prefix string) string {
	f.nextID++
	return fmt.Sprintf("%s%d", prefix, f.nextID)
}

func decodeFake(r *http.Request, v any) {
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, v)
}

func (f *fakeCluster) createPolicy(w http.ResponseWriter, r *http.Request) {
	var req api.CreatePolicyRequest
	decodeFake(r, &req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inject(w, r, "policy") {
		return
	}
	id := f.id("pol")
	seats := 0
	if len(req.Features) > 0 && req.Features[0].Seats != nil {
		seats = *req.Features[0].Seats
	}
	f.policies[id] = &fakePolicy{seats: seats, ttl: time.Duration(req.LeaseTTLSeconds) * time.Second}
	f.countOK(r, "policy")
	writeFake(w, 201, api.Policy{ID: id, Name: req.Name, Features: req.Features, LeaseTTLSeconds: req.LeaseTTLSeconds})
}

func (f *fakeCluster) patchPolicy(w http.ResponseWriter, r *http.Request) {
	var req api.UpdatePolicyRequest
	decodeFake(r, &req)
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.policies[r.PathValue("id")]
	if p == nil {
		writeFake(w, 404, api.ErrorResponse{Error: api.Error{Code: api.CodeNotFound}})
		return
	}
	if req.Features != nil && (*req.Features)[0].Seats != nil {
		p.seats = *(*req.Features)[0].Seats
	}
	writeFake(w, 200, api.Policy{ID: r.PathValue("id")})
}

func (f *fakeCluster) createLicense(w http.ResponseWriter, r *http.Request) {
	var req api.CreateLicenseRequest
	decodeFake(r, &req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inject(w, r, "license") {
		return
	}
	lic := &fakeLicense{id: f.id("lic"), policy: req.PolicyID}
	lic.key = "KEY-" + lic.id
	f.licenses[lic.key] = lic
	f.countOK(r, "license")
	writeFake(w, 201, api.License{ID: lic.id, Key: lic.key, PolicyID: req.PolicyID, Customer: req.Customer, Status: "active"})
}

func (f *fakeCluster) checkout(w http.ResponseWriter, r *http.Request) {
	var req api.CheckoutRequest
	decodeFake(r, &req)
	time.Sleep(f.checkoutDelay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inject(w, r, "checkout") {
		return
	}
	lic := f.licenses[req.LicenseKey]
	if lic == nil || req.RequestID == "" || req.Holder.Machine == "" || req.Feature != benchFeature {
		writeFake(w, 400, api.ErrorResponse{Error: api.Error{Code: api.CodeInvalidRequest, Message: "bad checkout"}})
		return
	}
	id := f.id("lse_")
	ttl := f.policies[lic.policy].ttl
	if req.TTLSeconds > 0 { // like the node: a checkout may ask for a TTL of its own
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	f.leases[id] = &fakeLease{key: req.LicenseKey, expires: time.Now().Add(ttl)}
	if strings.Contains(req.RequestID, "-storm-") {
		f.stormDue = append(f.stormDue, f.leases[id].expires)
	}
	f.countOK(r, "checkout")
	writeFake(w, 200, api.LeaseResponse{Lease: api.Lease{ID: id, LicenseID: lic.id, Feature: req.Feature, Holder: req.Holder,
		ExpiresAt: f.leases[id].expires.UTC()}, Token: "x.y.z"})
}

func (f *fakeCluster) heartbeat(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if f.gone[id] {
		f.zombies++
	}
	if f.inject(w, r, "heartbeat") {
		f.gone[id] = true
		delete(f.leases, id)
		return
	}
	if f.leases[r.PathValue("id")] == nil {
		f.countErr("heartbeat", api.CodeLeaseExpired)
		writeFake(w, 410, api.ErrorResponse{Error: api.Error{Code: api.CodeLeaseExpired}})
		return
	}
	f.countOK(r, "heartbeat")
	writeFake(w, 200, api.LeaseResponse{Lease: api.Lease{ID: r.PathValue("id")}, Token: "x.y.z"})
}

func (f *fakeCluster) checkin(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inject(w, r, "checkin") {
		return
	}
	delete(f.leases, r.PathValue("id"))
	f.countOK(r, "checkin")
	writeFake(w, 200, struct{}{})
}

func (f *fakeCluster) validate(w http.ResponseWriter, r *http.Request) {
	var req api.ValidateRequest
	decodeFake(r, &req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inject(w, r, "validate") {
		return
	}
	lic := f.licenses[req.LicenseKey]
	if lic == nil {
		writeFake(w, 401, api.ErrorResponse{Error: api.Error{Code: api.CodeUnauthorized}})
		return
	}
	inUse := 0
	for id, l := range f.leases {
		if time.Now().After(l.expires) {
			delete(f.leases, id) // the fake's reaper
		} else if l.key == req.LicenseKey {
			inUse++
		}
	}
	// Every fifth measured validation finds the license suspended: a 200
	// that bench must count as a failure under the answer's code.
	if measured(r) && f.seen["validate"]%5 == 0 {
		f.countErr("validate", api.CodeLicenseSuspended)
		writeFake(w, 200, api.ValidateResponse{Valid: false, Code: api.CodeLicenseSuspended})
		return
	}
	f.countOK(r, "validate")
	seats := map[string]api.SeatUsage{benchFeature: {Total: f.policies[lic.policy].seats, InUse: inUse}}
	writeFake(w, 200, api.ValidateResponse{Valid: true, Seats: seats, NodeID: "n1", Consistency: r.URL.Query().Get("consistency")})
}

// counts returns what the fake answered on route.
func (f *fakeCluster) counts(route string) (ok int, errs map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	errs = map[string]int{}
	for k, v := range f.errs[route] {
		errs[k] = v
	}
	return f.ok[route], errs
}

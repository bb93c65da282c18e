package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/valyala/fasthttp"
)

// tallyBackend checks seats of one hot license out and in through the HTTP
// API of the cluster's leader, as plain JSON over keep-alive connections.
type tallyBackend struct {
	leader string // base URL
	token  string
	key    string
	// fc sends the load: a client that costs the shared cores less than
	// net/http's (bench/driver.go in the main module says how much).
	fc  *fasthttp.Client
	hc  *http.Client // finding the leader
	seq atomic.Int64
}

func newTallyBackend(addrs []string, token string, seats int, maxConc int) (*tallyBackend, error) {
	b := &tallyBackend{token: token, hc: &http.Client{Timeout: 30 * time.Second},
		fc: &fasthttp.Client{MaxConnsPerHost: maxConc + 16, MaxConnWaitTimeout: 30 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, MaxIdleConnDuration: time.Minute,
			NoDefaultUserAgentHeader: true}}
	// The cluster was just started: wait for a leader, then provision.
	deadline := time.Now().Add(60 * time.Second)
	for {
		leader, err := findTallyLeader(b.hc, addrs)
		if err == nil {
			b.leader = leader
			if err = b.provision(seats); err == nil {
				return b, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("tally: cluster not ready after 60s: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func baseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimRight(addr, "/")
	}
	return "http://" + addr
}

// findTallyLeader asks each node who leads and returns the leader's URL.
func findTallyLeader(hc *http.Client, addrs []string) (string, error) {
	var lastErr error = errors.New("no node answered")
	for _, a := range addrs {
		resp, err := hc.Get(baseURL(a) + "/v1/status")
		if err != nil {
			lastErr = err
			continue
		}
		var st api.Status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		if st.State == "leader" {
			return baseURL(a), nil
		}
		if st.Leader.HTTPAddr != "" {
			return baseURL(st.Leader.HTTPAddr), nil
		}
		lastErr = fmt.Errorf("%s: no leader known yet", a)
	}
	return "", lastErr
}

// provision creates a product, a policy whose cad feature has the given
// seats, and one license on it.
func (b *tallyBackend) provision(seats int) error {
	ctx := context.Background()
	var p api.Product
	if err := b.call(ctx, "POST", "/v1/products", api.CreateProductRequest{Name: "bench"}, &p); err != nil {
		return err
	}
	var pol api.Policy
	if err := b.call(ctx, "POST", "/v1/policies", api.CreatePolicyRequest{ProductID: p.ID, Name: "hot",
		LeaseTTLSeconds: 300, Features: []api.Feature{{Name: "cad", Seats: &seats}}}, &pol); err != nil {
		return err
	}
	var lic api.License
	if err := b.call(ctx, "POST", "/v1/licenses", api.CreateLicenseRequest{PolicyID: pol.ID, Customer: "bench"}, &lic); err != nil {
		return err
	}
	b.key = lic.Key
	return nil
}

// call sends one request to the leader and decodes a 2xx answer into out;
// an error answer becomes a codedError with the API's code.
func (b *tallyBackend) call(ctx context.Context, method, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(b.leader + path)
	req.Header.SetMethod(method)
	req.Header.SetContentType("application/json")
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.SetBodyRaw(body)
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := b.fc.DoDeadline(req, resp, deadline); err != nil {
		return &codedError{"transport", err}
	}
	data := resp.Body()
	if resp.StatusCode()/100 != 2 {
		var e api.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return &codedError{e.Error.Code, &e.Error}
		}
		return &codedError{fmt.Sprintf("http_%d", resp.StatusCode()), errors.New(string(data))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func (b *tallyBackend) Worker(id int) worker { return &tallyWorker{b: b, id: id} }
func (b *tallyBackend) Close() error {
	b.fc.CloseIdleConnections()
	b.hc.CloseIdleConnections()
	return nil
}

// tallyWorker holds at most one seat: it checks out, then checks in.
type tallyWorker struct {
	b     *tallyBackend
	id    int
	lease string
	// req is the request id of the checkout under way; a failed attempt is
	// retried with the same id so that it never takes a second seat.
	req string
}

func (w *tallyWorker) Step(ctx context.Context) (string, error) {
	if w.lease == "" {
		if w.req == "" {
			w.req = fmt.Sprintf("bench-%d-%d", w.id, w.b.seq.Add(1))
		}
		var res api.LeaseResponse
		req := api.CheckoutRequest{LicenseKey: w.b.key, Feature: "cad",
			Holder: api.Holder{Machine: fmt.Sprintf("bench-%d", w.id), User: "bench"}, RequestID: w.req}
		if err := w.b.call(ctx, "POST", "/v1/checkout", req, &res); err != nil {
			return "acquire", err
		}
		w.lease, w.req = res.Lease.ID, ""
		return "acquire", nil
	}
	err := w.b.call(ctx, "POST", "/v1/leases/"+w.lease+"/checkin", api.LicenseKeyRequest{LicenseKey: w.b.key}, nil)
	if err != nil {
		return "release", err
	}
	w.lease = ""
	return "release", nil
}

func (w *tallyWorker) Drain(ctx context.Context) {
	for w.lease != "" && ctx.Err() == nil {
		if _, err := w.Step(ctx); err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

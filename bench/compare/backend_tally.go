package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/api"
)

// tallyBackend checks seats of one hot license out and in through the HTTP
// API of the cluster's leader, as plain JSON over keep-alive connections.
type tallyBackend struct {
	leader string // base URL
	token  string
	key    string
	hc     *http.Client // provisioning and worker 0
	// hcs spreads the workers over several transports: one
	// http.Transport's idle-pool mutex, shared by 64 or 256 workers, is a
	// bottleneck of the driver itself, not of the cluster.
	hcs []*http.Client
	seq atomic.Int64
}

const clientShards = 16

func newTallyBackend(addrs []string, token string, seats int, maxConc int) (*tallyBackend, error) {
	b := &tallyBackend{token: token}
	for range clientShards {
		tr := &http.Transport{MaxIdleConns: maxConc + 16, MaxIdleConnsPerHost: maxConc + 16, IdleConnTimeout: time.Minute}
		b.hcs = append(b.hcs, &http.Client{Transport: tr, Timeout: 30 * time.Second})
	}
	b.hc = b.hcs[0]
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
	if err := b.call(ctx, b.hc, "POST", "/v1/products", api.CreateProductRequest{Name: "bench"}, &p); err != nil {
		return err
	}
	var pol api.Policy
	if err := b.call(ctx, b.hc, "POST", "/v1/policies", api.CreatePolicyRequest{ProductID: p.ID, Name: "hot",
		LeaseTTLSeconds: 300, Features: []api.Feature{{Name: "cad", Seats: &seats}}}, &pol); err != nil {
		return err
	}
	var lic api.License
	if err := b.call(ctx, b.hc, "POST", "/v1/licenses", api.CreateLicenseRequest{PolicyID: pol.ID, Customer: "bench"}, &lic); err != nil {
		return err
	}
	b.key = lic.Key
	return nil
}

// call sends one request to the leader and decodes a 2xx answer into out;
// an error answer becomes a codedError with the API's code.
func (b *tallyBackend) call(ctx context.Context, hc *http.Client, method, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, b.leader+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := hc.Do(req)
	if err != nil {
		return &codedError{"transport", err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return &codedError{"transport", err}
	}
	if resp.StatusCode/100 != 2 {
		var e api.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return &codedError{e.Error.Code, &e.Error}
		}
		return &codedError{fmt.Sprintf("http_%d", resp.StatusCode), errors.New(string(data))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func (b *tallyBackend) Worker(id int) worker { return &tallyWorker{b: b, id: id} }
func (b *tallyBackend) Close() error {
	for _, hc := range b.hcs {
		hc.CloseIdleConnections()
	}
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
		if err := w.b.call(ctx, w.b.hcs[w.id%clientShards], "POST", "/v1/checkout", req, &res); err != nil {
			return "acquire", err
		}
		w.lease, w.req = res.Lease.ID, ""
		return "acquire", nil
	}
	err := w.b.call(ctx, w.b.hcs[w.id%clientShards], "POST", "/v1/leases/"+w.lease+"/checkin", api.LicenseKeyRequest{LicenseKey: w.b.key}, nil)
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

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tallyhq/tally/api"
)

// pool is one license whose "cad" feature the clients contend for.
type pool struct {
	id, key string
	seats   int
}

// recorder collects the history of every client; one mutex is plenty at
// the workload's rate.
type recorder struct {
	mu  sync.Mutex
	ops []Op
}

func (r *recorder) add(op Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// workload drives clients against the cluster's HTTP addresses. Each client
// has at most one request in flight and sends each one to a random node, so
// forwarding, follower reads and dead nodes are all exercised. Requests go
// out once, without the SDK's retries, so that an unknown outcome is
// recorded as such.
type workload struct {
	addrs   func() []string
	pools   []pool
	rec     *recorder
	hc      *http.Client
	timeout time.Duration
}

func newWorkload(addrs func() []string, pools []pool, timeout time.Duration) *workload {
	return &workload{
		addrs:   addrs,
		pools:   pools,
		rec:     &recorder{},
		timeout: timeout,
		hc: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 16,
			DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
		}},
	}
}

// client runs one client until ctx ends.
func (w *workload) client(ctx context.Context, id int, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	p := w.pools[id%len(w.pools)]
	var held string // lease id this client holds, if any
	for seq := 0; ctx.Err() == nil; seq++ {
		switch r := rng.Float64(); {
		case held == "" && r < 0.2, held != "" && r >= 0.9:
			w.count(ctx, id, p, rng)
		case held == "":
			held = w.checkout(ctx, id, p, fmt.Sprintf("c%d-r%d", id, seq), rng)
		case r < 0.6:
			if w.heartbeat(ctx, id, p, held, rng) == OutcomeGone {
				held = ""
			}
		case r < 0.8:
			w.checkin(ctx, id, p, held, rng)
			held = ""
		default:
			held = "" // abandon it: the lease must expire by itself
		}
		sleep(ctx, time.Duration(5+rng.Intn(15))*time.Millisecond)
	}
}

// checkout takes a seat; an unknown outcome is retried with the same
// request id, as the SDK would, which also tests exactly-once.
func (w *workload) checkout(ctx context.Context, id int, p pool, reqID string, rng *rand.Rand) string {
	for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
		op := Op{Client: id, Pool: p.id, Kind: OpCheckout, RequestID: reqID, Holder: reqID}
		var res api.LeaseResponse
		op.Outcome, op.Node = w.do(ctx, &op, rng, "/v1/checkout", api.CheckoutRequest{
			LicenseKey: p.key, Feature: "cad", RequestID: reqID,
			Holder: api.Holder{Machine: reqID, User: fmt.Sprintf("c%d", id)},
		}, &res)
		if op.Outcome == OutcomeOK {
			op.LeaseID, op.ExpiresAt = res.Lease.ID, res.Lease.ExpiresAt.UnixNano()
		}
		w.rec.add(op)
		switch op.Outcome {
		case OutcomeOK:
			return op.LeaseID
		case OutcomeFull:
			sleep(ctx, time.Duration(50+rng.Intn(100))*time.Millisecond)
			return ""
		case OutcomeFailed:
			return ""
		}
		sleep(ctx, 50*time.Millisecond)
	}
	return ""
}

func (w *workload) heartbeat(ctx context.Context, id int, p pool, lease string, rng *rand.Rand) Outcome {
	op := Op{Client: id, Pool: p.id, Kind: OpHeartbeat, LeaseID: lease}
	var res api.LeaseResponse
	op.Outcome, op.Node = w.do(ctx, &op, rng, "/v1/leases/"+lease+"/heartbeat", api.LicenseKeyRequest{LicenseKey: p.key}, &res)
	if op.Outcome == OutcomeOK {
		op.ExpiresAt = res.Lease.ExpiresAt.UnixNano()
	}
	w.rec.add(op)
	return op.Outcome
}

func (w *workload) checkin(ctx context.Context, id int, p pool, lease string, rng *rand.Rand) {
	op := Op{Client: id, Pool: p.id, Kind: OpCheckin, LeaseID: lease}
	op.Outcome, op.Node = w.do(ctx, &op, rng, "/v1/leases/"+lease+"/checkin", api.LicenseKeyRequest{LicenseKey: p.key}, nil)
	w.rec.add(op)
}

func (w *workload) count(ctx context.Context, id int, p pool, rng *rand.Rand) {
	op := Op{Client: id, Pool: p.id, Kind: OpCount}
	var res api.ValidateResponse
	op.Outcome, op.Node = w.do(ctx, &op, rng, "/v1/validate?consistency=linearizable",
		api.ValidateRequest{LicenseKey: p.key, Feature: "cad"}, &res)
	if op.Outcome == OutcomeOK {
		op.Count = res.Seats["cad"].InUse
	}
	w.rec.add(op)
}

// do sends one request to a random node, stamping op.Call and op.Return,
// and classifies the answer. A refused connection never reached a node
// (Failed); a timeout or a 5xx may have been applied (Unknown).
func (w *workload) do(ctx context.Context, op *Op, rng *rand.Rand, path string, in, out any) (Outcome, int) {
	addrs := w.addrs()
	node := rng.Intn(len(addrs))
	body, _ := json.Marshal(in)
	rctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, "http://"+addrs[node]+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	op.Call = time.Now().UnixNano()
	resp, err := w.hc.Do(req)
	op.Return = time.Now().UnixNano()
	if err != nil {
		var nerr *net.OpError
		if errors.As(err, &nerr) && nerr.Op == "dial" {
			return OutcomeFailed, node
		}
		return OutcomeUnknown, node
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		if out != nil && json.NewDecoder(resp.Body).Decode(out) != nil {
			return OutcomeUnknown, node
		}
		return OutcomeOK, node
	case resp.StatusCode == http.StatusConflict && op.Kind == OpCheckout:
		return OutcomeFull, node
	case (resp.StatusCode == http.StatusGone || resp.StatusCode == http.StatusNotFound) && op.Kind == OpHeartbeat:
		return OutcomeGone, node
	case resp.StatusCode >= 500:
		return OutcomeUnknown, node
	}
	return OutcomeFailed, node
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

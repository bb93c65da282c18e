package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/api"
)

// surgeSeats is the seat count of the surge policy; the PATCH adds one.
const surgeSeats = 5

// provisionSurge: C admin clients create K licenses on one policy, and a
// few other policies among them, as fast as the cluster takes them; then
// one PATCH changes the seats of the policy every license uses. It reports
// creation throughput, the PATCH latency, and how long until every node's
// stale read shows the new seat count on a license.
func provisionSurge(ctx context.Context, e *env) (*Report, error) {
	o := e.opts
	k := orDefault(o.Licenses, o.pick(200, 100))
	np := orDefault(o.Policies, o.pick(3, 2))
	clients := orDefault(o.Clients, o.pick(16, 8))
	r := newReport("provision-surge", e.target)
	r.param("licenses", k)
	r.param("policies", np)
	r.param("clients", clients)
	r.param("node", orDefault(o.Node, "all"))

	fx, err := e.provision(ctx, "surge", surgeSeats, time.Minute, 0)
	if err != nil {
		return nil, err
	}
	targets, err := e.targets(ctx, o.Node)
	if err != nil {
		return nil, err
	}
	// Jobs 0..k+np-1; the policy jobs are spread evenly among them.
	isPolicy := make([]bool, k+np)
	for i := range np {
		isPolicy[i*(k+np)/np] = true
	}
	createLic, createPol := NewOp("create_license"), NewOp("create_policy")
	var next atomic.Int64
	var firstKey atomic.Pointer[string]
	p := startProgress(o.Progress, o.TTY, "provision-surge", nil, createLic, createPol)
	runWorkers(ctx, clients, func(ctx context.Context, w int) {
		var b wbuf
		base := targets[w%len(targets)]
		for ctx.Err() == nil {
			j := int(next.Add(1) - 1)
			if j >= len(isPolicy) {
				return
			}
			t0 := time.Now()
			if isPolicy[j] {
				b.req = append(b.req[:0], `{"product_id":`+jq(e.product)+`,"name":`+jq(e.prefix+"-surge-policy-"+strconv.Itoa(j))+
					`,"features":[{"name":"`+benchFeature+`","seats":5}],"lease_ttl_seconds":60}`...)
				createPol.Done(t0, e.d.send(ctx, http.MethodPost, base+"/v1/policies", b.req, true, &b))
				continue
			}
			b.req = append(b.req[:0], `{"policy_id":`+jq(fx.policy.ID)+`,"customer":`+jq(e.prefix+"-surge-"+strconv.Itoa(j))+`}`...)
			code := e.d.send(ctx, http.MethodPost, base+"/v1/licenses", b.req, true, &b)
			if code == "" && firstKey.Load() == nil {
				if key := jsonString(b.resp, "key"); key != "" {
					firstKey.CompareAndSwap(nil, &key)
				}
			}
			createLic.Done(t0, code)
		}
	})
	p.Stop()
	createLic.Stop()
	createPol.Stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// One change that every license on the policy sees at once.
	patch := NewOp("patch_policy")
	seats := surgeSeats + 1
	feats := []api.Feature{{Name: benchFeature, Seats: &seats}}
	t0 := time.Now()
	_, err = e.admin.UpdatePolicy(ctx, fx.policy.ID, api.UpdatePolicyRequest{Features: &feats})
	patch.Done(t0, errCode(err))
	patched := time.Now()
	r.finish(createLic, createPol, patch)
	if err != nil {
		return r, fmt.Errorf("patch the policy: %w", err)
	}
	r.result("patch_latency", ms(patched.Sub(t0)), "ms", fmt.Sprintf("PATCH of the policy %d licenses use", createLic.OK()))
	if key := firstKey.Load(); key != nil {
		everywhere, err := e.seenEverywhere(ctx, *key, seats, patched.Add(30*time.Second))
		if err != nil {
			r.note("the new seat count was not seen on every node: %v", err)
		} else {
			r.result("patch_visible_everywhere", ms(everywhere.Sub(patched)), "ms", "after the PATCH answered, until a stale validate on every node showed the new seats")
		}
	}
	return r, nil
}

// seenEverywhere polls a stale validate of key on every address until each
// shows total seats of the bench feature, and returns when the last did.
func (e *env) seenEverywhere(ctx context.Context, key string, total int, deadline time.Time) (time.Time, error) {
	for _, a := range e.admin.Addrs() {
		n := e.admin.Node(a)
		for {
			res, err := n.Validate(ctx, api.ValidateRequest{LicenseKey: key, Feature: benchFeature}, api.ConsistencyStale)
			if err == nil && res.Seats[benchFeature].Total == total {
				break
			}
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("%s: still not %d seats (last error %v)", a, total, err)
			}
			if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
				return time.Time{}, err
			}
		}
	}
	return time.Now(), nil
}

// errCode is the API error code of err, "" for nil.
func errCode(err error) string {
	if err == nil {
		return ""
	}
	if ae, ok := err.(*api.Error); ok {
		return ae.Code
	}
	return codeConnection
}

package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tallyhq/tally/api"
)

// validate: C clients validate one license against one node, by default a
// follower (the read path that must scale without the leader), stale by
// default or --consistency linearizable.
func validate(ctx context.Context, e *env) (*Report, error) {
	o := e.opts
	clients := orDefault(o.Clients, o.pick(64, 16))
	dur := orDefault(o.Duration, o.pickDur(10*time.Second, 3*time.Second))
	consistency := orDefault(o.Consistency, api.ConsistencyStale)
	if consistency != api.ConsistencyStale && consistency != api.ConsistencyLinearizable {
		return nil, fmt.Errorf("--consistency must be stale or linearizable, not %q", consistency)
	}
	node := orDefault(o.Node, "follower")
	r := newReport("validate", e.target)
	r.param("clients", clients)
	r.param("duration", dur)
	r.param("consistency", consistency)

	fx, err := e.provision(ctx, "validate", 10, time.Minute, 1)
	if err != nil {
		return nil, err
	}
	targets, err := e.targets(ctx, node)
	if err != nil && o.Node == "" {
		// A single node has no follower: measure it rather than refuse.
		e.logf("%v; validating against %s instead", err, e.admin.Addrs()[0])
		targets, err = e.admin.Addrs()[:1], nil
	}
	if err != nil {
		return nil, err
	}
	r.param("node", targets[0])
	// A follower answers a stale read from what it has applied: wait until
	// it has the new license, or the first requests would count as 401s.
	if err := e.waitKnown(ctx, targets[0], fx.licenses[0].Key); err != nil {
		return nil, err
	}
	body := []byte(`{"license_key":` + jq(fx.licenses[0].Key) + `,"feature":"` + benchFeature + `"}`)
	op := NewOp("validate")
	p := startProgress(o.Progress, o.TTY, "validate "+consistency, nil, op)
	end := time.Now().Add(dur)
	runWorkers(ctx, clients, func(ctx context.Context, w int) {
		var b wbuf
		url := targets[w%len(targets)] + "/v1/validate?consistency=" + consistency
		for ctx.Err() == nil && time.Now().Before(end) {
			t0 := time.Now()
			code := e.d.send(ctx, http.MethodPost, url, body, false, &b)
			if code == "" && !jsonHasTrue(b.resp, "valid") {
				code = orDefault(jsonString(b.resp, "code"), codeBadAnswer)
			}
			op.Done(t0, code)
			pauseAfter(ctx, code)
		}
	})
	p.Stop()
	r.finish(op)
	return r, nil
}

// waitKnown polls a stale validate of key on the node at base until it
// answers valid, for at most 10 s.
func (e *env) waitKnown(ctx context.Context, base, key string) error {
	n := e.admin.Node(base)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := n.Validate(ctx, api.ValidateRequest{LicenseKey: key, Feature: benchFeature}, api.ConsistencyStale)
		if err == nil && res.Valid {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not know the new license after 10 s: %v", base, err)
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

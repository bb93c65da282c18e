package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/api"
)

// expiryStorm: M leases are taken as fast as the cluster gives them and
// never heartbeated, while C clients keep checking out and in on another
// license. Each storm checkout asks for the whole seconds left until one
// due time, T after the first was sent, so all M fall due within the same
// second however long taking them lasted (a lease's deadline is its
// checkout's time plus its TTL). It reports how long until all M seats are
// free again (polled with linearizable validations) and the checkout
// latency while the leader reaps them.
func expiryStorm(ctx context.Context, e *env) (*Report, error) {
	o := e.opts
	m := orDefault(o.Leases, o.pick(200, 100))
	ttl := orDefault(o.TTL, 2*time.Second)
	if ttl < time.Second {
		return nil, fmt.Errorf("--ttl must be at least 1s, got %s", ttl)
	}
	ttl = ttl.Round(time.Second) // the API takes whole seconds
	clients := orDefault(o.Clients, o.pick(8, 4))
	r := newReport("expiry-storm", e.target)
	r.param("leases", m)
	r.param("ttl", ttl)
	r.param("clients", clients)
	r.param("node", orDefault(o.Node, "all"))

	storm, err := e.provision(ctx, "expiry", m, ttl, 1)
	if err != nil {
		return nil, err
	}
	steady, err := e.provision(ctx, "expiry-steady", clients, time.Minute, 1)
	if err != nil {
		return nil, err
	}
	targets, err := e.targets(ctx, o.Node)
	if err != nil {
		return nil, err
	}

	// The steady load runs from the start until all M seats are free; its
	// checkouts count as "during" once the first storm lease is due.
	baseline, during, checkin := NewOp("checkout_baseline"), NewOp("checkout_during_expiry"), NewOp("checkin")
	var cur atomic.Pointer[Op]
	cur.Store(baseline)
	// Storing nil in cur stops it; requests in flight then finish, so each
	// one the cluster answered is counted.
	var wg sync.WaitGroup
	stopLoad := func() { cur.Store(nil); wg.Wait() }
	defer stopLoad()
	wg.Add(1)
	go func() {
		defer wg.Done()
		runWorkers(ctx, clients, func(ctx context.Context, w int) {
			lic := steady.licenses[0]
			tpl := newCheckoutTemplate(lic.Key, e.prefix+"-steady"+strconv.Itoa(w), strconv.Itoa(w), e.prefix+"-steady"+strconv.Itoa(w), 0)
			steadyLoop(ctx, e.d, targets[w%len(targets)], tpl, keyBody(lic.Key), &cur, checkin)
		})
	}()

	// A moment of steady load alone, then take the M leases as fast as the
	// cluster gives them.
	if err := sleepCtx(ctx, o.pickDur(time.Second, 500*time.Millisecond)); err != nil {
		return nil, err
	}
	take := NewOp("storm_checkout")
	// The TTL each checkout asks for rounds its deadline up to the next
	// whole second at or after due; lastDue is the latest of them.
	due := time.Now().Add(ttl)
	var lastDue atomic.Int64
	var late atomic.Int64 // checkouts sent after due: their leases fall due later
	p := startProgress(o.Progress, o.TTY, "expiry-storm: taking leases", nil, take, baseline)
	lic := storm.licenses[0]
	_ = forEach(ctx, m, max(clients*4, 32), func(ctx context.Context, j int) error {
		var b wbuf
		t0 := time.Now()
		secs := stormTTL(due.Sub(t0))
		if t0.After(due) {
			late.Add(1)
		}
		tpl := newCheckoutTemplate(lic.Key, e.prefix+"-storm"+strconv.Itoa(j), "1", e.prefix+"-storm", secs)
		b.req = tpl.build(nil, int64(j))
		code := e.d.send(ctx, http.MethodPost, targets[j%len(targets)]+"/v1/checkout", b.req, false, &b)
		take.Done(t0, code)
		if code == "" {
			storeMax(&lastDue, leaseDeadline(b.resp, time.Now().Add(time.Duration(secs)*time.Second)).UnixNano())
		}
		return nil
	})
	p.Stop()
	take.Stop()
	if take.OK() == 0 {
		return nil, fmt.Errorf("no storm lease was taken: %v", take.ErrorCodes())
	}
	if n := late.Load(); n > 0 {
		r.note("taking the leases outlasted --ttl %s: %d were sent after the due time and fall due up to %.0f ms later; raise --ttl for a storm in one second",
			ttl, n, ms(time.Unix(0, lastDue.Load()).Sub(due)))
	}
	last := time.Unix(0, lastDue.Load())

	// Wait for the due time, then poll until all are free.
	var inUse atomic.Int64
	inUse.Store(take.OK())
	p = startProgress(o.Progress, o.TTY, "expiry-storm: waiting for expiry", func() string {
		return fmt.Sprintf("storm seats in use %d", inUse.Load())
	}, baseline, during)
	_ = sleepCtx(ctx, time.Until(due))
	cur.Store(during)
	baseline.Stop()
	freeAt, err := e.waitFree(ctx, lic.Key, &inUse, last.Add(time.Minute))
	during.Stop()
	stopLoad()
	p.Stop()
	r.finish(take, baseline, during, checkin)
	if err != nil {
		return r, err
	}
	r.result("all_free_after", ms(freeAt.Sub(due)), "ms", "from the due time until validate showed no seat in use")
	r.result("beyond_due", ms(freeAt.Sub(last)), "ms", "from the latest storm lease's deadline until all were free: reaping and polling delay")
	if during.OK() > 0 {
		r.result("checkout_p99_during_expiry", ms(during.Histogram().Quantile(0.99)), "ms",
			fmt.Sprintf("of %d checkouts between the first lease falling due and the last seat free", during.OK()))
	}
	return r, nil
}

// steadyLoop cycles a seat like checkout-storm, counting each checkout in
// the Op cur points to at the time it was sent; nil stops it.
func steadyLoop(ctx context.Context, d *driver, base string, tpl checkoutTemplate, key []byte, cur *atomic.Pointer[Op], checkin *Op) {
	var b wbuf
	for n := int64(0); ctx.Err() == nil; n++ {
		op := cur.Load()
		if op == nil {
			return
		}
		cycleOnce(ctx, d, base, tpl, key, n, &b, op, checkin)
	}
}

// waitFree polls linearizable validations of key until the bench feature
// has no seat in use, and returns when it saw that.
func (e *env) waitFree(ctx context.Context, key string, inUse *atomic.Int64, deadline time.Time) (time.Time, error) {
	for {
		res, err := e.admin.Validate(ctx, api.ValidateRequest{LicenseKey: key, Feature: benchFeature}, api.ConsistencyLinearizable)
		now := time.Now()
		if err == nil {
			n := res.Seats[benchFeature].InUse
			inUse.Store(int64(n))
			if n == 0 {
				return now, nil
			}
		}
		if now.After(deadline) {
			return now, fmt.Errorf("storm seats still in use at the deadline (%d; last error %v)", inUse.Load(), err)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return now, err
		}
	}
}

// stormTTL is the whole seconds a checkout sent with left until the due
// time asks for: rounded up, so no lease falls due early, and at least 1.
func stormTTL(left time.Duration) int64 {
	secs := int64((left + time.Second - 1) / time.Second)
	if secs < 1 {
		return 1
	}
	return secs
}

// leaseDeadline is the expires_at of a checkout answer: the deadline the
// leader stamped. guess stands in when the answer has none.
func leaseDeadline(answer []byte, guess time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, jsonString(answer, "expires_at")); err == nil && !t.IsZero() {
		return t
	}
	return guess
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

package bench

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// desktops: N simulated desktops each hold a seat and heartbeat every
// interval for the duration, spread evenly over the interval the way real
// desktops drift apart. It reports heartbeat latency, the leader's CPU
// over the heartbeat phase, and how many Raft entries that phase cost
// (heartbeats must cost none; lease checkpoints cost a few).
func desktops(ctx context.Context, e *env) (*Report, error) {
	o := e.opts
	n := orDefault(o.Desktops, o.pick(100, 50))
	interval := orDefault(o.Interval, time.Second)
	dur := orDefault(o.Duration, o.pickDur(10*time.Second, 4*time.Second))
	clients := min(orDefault(o.Clients, o.pick(64, 16)), n)
	nlic := min(orDefault(o.Licenses, 1), n)
	perLic := (n + nlic - 1) / nlic
	// A TTL of several intervals, so a heartbeat a little late under load
	// does not lose its seat.
	ttl := max(3*interval, 10*time.Second).Round(time.Second)
	r := newReport("desktops", e.target)
	r.param("desktops", n)
	r.param("interval", interval)
	r.param("duration", dur)
	r.param("clients", clients)
	r.param("licenses", nlic)
	r.param("lease_ttl", ttl)
	r.param("node", orDefault(o.Node, "all"))

	fx, err := e.provision(ctx, "desktops", perLic, ttl, nlic)
	if err != nil {
		return nil, err
	}
	targets, err := e.targets(ctx, o.Node)
	if err != nil {
		return nil, err
	}
	type desk struct {
		url string // heartbeat URL; "" when the desktop holds no seat
		key []byte
		co  string // checkin URL
	}
	desks := make([]desk, n)
	checkout := NewOp("checkout")

	// Take every seat first, C at a time.
	p := startProgress(o.Progress, o.TTY, "desktops: checking out", nil, checkout)
	_ = forEach(ctx, n, clients, func(ctx context.Context, j int) error {
		var b wbuf
		lic := fx.licenses[j%nlic]
		base := targets[j%len(targets)]
		tpl := newCheckoutTemplate(lic.Key, e.prefix+"-desk"+strconv.Itoa(j), "1", e.prefix+"-desk", 0)
		b.req = tpl.build(nil, int64(j))
		t0 := time.Now()
		code := e.d.send(ctx, http.MethodPost, base+"/v1/checkout", b.req, false, &b)
		id := ""
		if code == "" {
			if id = jsonString(b.resp, "id"); id == "" {
				code = codeBadAnswer
			}
		}
		checkout.Done(t0, code)
		if id != "" {
			desks[j] = desk{url: base + "/v1/leases/" + id + "/heartbeat", co: base + "/v1/leases/" + id + "/checkin", key: keyBody(lic.Key)}
		}
		return nil
	})
	p.Stop()
	checkout.Stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// The heartbeat phase, watched on the leader.
	before := e.leaderSample(ctx)
	var late atomic.Int64
	heartbeat := NewOp("heartbeat") // its throughput window is this phase only
	p = startProgress(o.Progress, o.TTY, "desktops: heartbeating", nil, heartbeat)
	start := time.Now()
	end := start.Add(dur)
	runWorkers(ctx, clients, func(ctx context.Context, w int) {
		var b wbuf
		for round := 0; ; round++ {
			for j := w; j < n; j += clients {
				d := &desks[j]
				if d.url == "" {
					continue
				}
				due := start.Add(time.Duration(round)*interval + interval*time.Duration(j)/time.Duration(n))
				if due.After(end) {
					return
				}
				if wait := time.Until(due); wait > 0 {
					if sleepCtx(ctx, wait) != nil {
						return
					}
				} else if -wait > interval {
					late.Add(1)
				}
				t0 := time.Now()
				code := e.d.send(ctx, http.MethodPost, d.url, d.key, false, &b)
				heartbeat.Done(t0, code)
				if code == "lease_expired" || code == "not_found" {
					d.url = "" // the seat is gone; a real desktop would check out again
				}
			}
		}
	})
	p.Stop()
	heartbeat.Stop()
	after := e.leaderSample(ctx)

	// Give the seats back.
	checkin := NewOp("checkin")
	_ = forEach(ctx, n, clients, func(ctx context.Context, j int) error {
		if d := desks[j]; d.co != "" {
			var b wbuf
			t0 := time.Now()
			checkin.Done(t0, e.d.send(ctx, http.MethodPost, d.co, d.key, false, &b))
		}
		return nil
	})
	r.finish(checkout, heartbeat, checkin)
	r.result("heartbeats_wanted", float64(n)/interval.Seconds(), "per s", "desktops / interval")
	r.result("heartbeats_sent", heartbeat.Report().PerSecond, "per s", "answered 2xx")
	r.result("late_heartbeats", float64(late.Load()), "", "sent more than one interval after due: the load generator fell behind")
	e.leaderDelta(r, before, after, dur)
	return r, nil
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

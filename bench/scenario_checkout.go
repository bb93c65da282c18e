package bench

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// checkoutStorm: C clients check out and at once check back in, on one hot
// license with limited seats, or spread over --licenses of them, so seats
// cycle as fast as the cluster commits them.
func checkoutStorm(ctx context.Context, e *env) (*Report, error) {
	o := e.opts
	clients := orDefault(o.Clients, o.pick(16, 8))
	dur := orDefault(o.Duration, o.pickDur(10*time.Second, 3*time.Second))
	nlic := orDefault(o.Licenses, 1)
	seats := orDefault(o.Seats, max(clients/nlic, 1))
	r := newReport("checkout-storm", e.target)
	r.param("clients", clients)
	r.param("duration", dur)
	r.param("licenses", nlic)
	r.param("seats", seats)
	r.param("node", orDefault(o.Node, "all"))

	fx, err := e.provision(ctx, "storm", seats, time.Minute, nlic)
	if err != nil {
		return nil, err
	}
	targets, err := e.targets(ctx, o.Node)
	if err != nil {
		return nil, err
	}
	checkout, checkin := NewOp("checkout"), NewOp("checkin")
	p := startProgress(o.Progress, o.TTY, "checkout-storm", nil, checkout, checkin)
	end := time.Now().Add(dur)
	runWorkers(ctx, clients, func(ctx context.Context, w int) {
		lic := fx.licenses[w%nlic]
		base := targets[w%len(targets)]
		tpl := newCheckoutTemplate(lic.Key, e.prefix+"-m"+strconv.Itoa(w), strconv.Itoa(w), e.prefix+"-w"+strconv.Itoa(w), 0)
		body := keyBody(lic.Key)
		cycleSeat(ctx, e.d, base, tpl, body, end, checkout, checkin)
	})
	p.Stop()
	r.finish(checkout, checkin)
	if checkout.ErrorCodes()["no_seats_available"] > 0 {
		r.note("no_seats_available means every seat was held at that moment: %d seat(s) for %d clients", seats*nlic, clients)
	}
	return r, nil
}

// cycleSeat checks a seat out and straight back in until end. Requests in
// flight at the end are finished, so no seat is left held.
func cycleSeat(ctx context.Context, d *driver, base string, tpl checkoutTemplate, key []byte, end time.Time, checkout, checkin *Op) {
	var b wbuf
	for n := int64(0); ctx.Err() == nil && time.Now().Before(end); n++ {
		cycleOnce(ctx, d, base, tpl, key, n, &b, checkout, checkin)
	}
}

// cycleOnce checks one seat out, counted in checkout, and straight back in,
// counted in checkin; after a failed checkout it pauses as pauseAfter says.
func cycleOnce(ctx context.Context, d *driver, base string, tpl checkoutTemplate, key []byte, n int64, b *wbuf, checkout, checkin *Op) {
	b.req = tpl.build(b.req[:0], n)
	t0 := time.Now()
	code := d.send(ctx, http.MethodPost, base+"/v1/checkout", b.req, false, b)
	id := ""
	if code == "" {
		if id = jsonString(b.resp, "id"); id == "" {
			code = codeBadAnswer
		}
	}
	checkout.Done(t0, code)
	if id == "" {
		pauseAfter(ctx, code)
		return
	}
	t1 := time.Now()
	checkin.Done(t1, d.send(ctx, http.MethodPost, base+"/v1/leases/"+id+"/checkin", key, false, b))
}

// pauseAfter waits a little after a transport failure, so a worker facing
// a dead node does not spin the CPU the cluster needs.
func pauseAfter(ctx context.Context, code string) {
	switch code {
	case codeRefused, codeConnection, codeClientTimeout:
		t := time.NewTimer(10 * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

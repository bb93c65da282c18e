package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// failoverGiveUp bounds one trial: a cluster that takes longer has failed.
const failoverGiveUp = time.Minute

// failover: on a cluster bench started, kill -9 the leader and time until
// a checkout sent through a survivor is accepted; restart the node, wait
// for the cluster to settle, and repeat. The checkout of one trial keeps
// one request id across its retries, so they take one seat at most.
func failover(ctx context.Context, e *env) (*Report, error) {
	lc := e.opts.Local
	if lc == nil {
		return nil, ErrNeedsLocal
	}
	trials := orDefault(e.opts.Trials, e.opts.pick(5, 3))
	r := newReport("failover", e.target)
	r.param("trials", trials)
	r.param("raft_profile", lc.cfg.RaftProfile)

	fx, err := e.provision(ctx, "failover", trials+10, time.Minute, 1)
	if err != nil {
		return nil, err
	}
	lic := fx.licenses[0]
	key := keyBody(lic.Key)
	addrs := e.admin.Addrs()
	accepted, attempts := NewOp("failover"), NewOp("checkout_attempt")
	for t := 1; t <= trials && ctx.Err() == nil; t++ {
		wctx, cancel := context.WithTimeout(ctx, failoverGiveUp)
		leader, err := lc.WaitLeader(wctx)
		cancel()
		if err != nil {
			return nil, err
		}
		var survivors []string
		for i, a := range addrs {
			if i != leader {
				survivors = append(survivors, a)
			}
		}
		tpl := newCheckoutTemplate(lic.Key, e.prefix+"-failover", "1", e.prefix+"-failover-trial"+strconv.Itoa(t), 0)
		body := tpl.build(nil, 0)
		if e.opts.Progress != nil {
			fmt.Fprintf(e.opts.Progress, "failover: trial %d/%d, killing the leader %s\n", t, trials, lc.NodeID(leader))
		}
		if err := lc.Kill(leader); err != nil {
			return nil, err
		}
		killed := time.Now()
		trial := Trial{N: t, Killed: lc.NodeID(leader)}
		var b wbuf
		for k := 0; ; k++ {
			base := survivors[k%len(survivors)]
			t0 := time.Now()
			code := e.d.send(ctx, http.MethodPost, base+"/v1/checkout", body, false, &b)
			attempts.Done(t0, code)
			if code == "" {
				trial.MS = ms(time.Since(killed))
				accepted.hist.Record(time.Since(killed))
				accepted.ok.Add(1)
				if id := jsonString(b.resp, "id"); id != "" {
					e.d.send(ctx, http.MethodPost, base+"/v1/leases/"+id+"/checkin", key, false, &b)
				}
				break
			}
			if time.Since(killed) > failoverGiveUp || ctx.Err() != nil {
				trial.Error = fmt.Sprintf("no checkout accepted within %s (last: %s)", failoverGiveUp, code)
				accepted.Fail("gave_up")
				break
			}
			_ = sleepCtx(ctx, 5*time.Millisecond)
		}
		r.Trials = append(r.Trials, trial)
		if err := lc.Restart(leader); err != nil {
			return nil, err
		}
	}
	// Leave the cluster whole for whatever runs next.
	wctx, cancel := context.WithTimeout(ctx, failoverGiveUp)
	_, err = lc.WaitLeader(wctx)
	cancel()
	r.finish(accepted, attempts)
	var times []float64
	for _, t := range r.Trials {
		if t.Error == "" {
			times = append(times, t.MS)
		}
	}
	if len(times) > 0 {
		slices.Sort(times)
		r.result("median", times[(len(times)-1)/2], "ms", fmt.Sprintf("over %d trial(s), from kill -9 to the accepted checkout", len(times)))
		r.result("min", times[0], "ms", "")
		r.result("max", times[len(times)-1], "ms", "")
	}
	return r, err
}

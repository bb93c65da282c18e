package bench

import (
	"context"
	"fmt"
	"time"
)

// leaderSample is what the leader says about itself at one moment.
type leaderSample struct {
	id     string
	cpu    float64 // process_cpu_seconds_total
	commit uint64  // its commit index
	at     time.Time
	err    error
}

// leaderSample reads the leader's CPU time and commit index.
func (e *env) leaderSample(ctx context.Context) leaderSample {
	st, err := e.admin.Status(ctx)
	if err != nil {
		return leaderSample{err: err}
	}
	if st.Leader.HTTPAddr == "" {
		return leaderSample{err: fmt.Errorf("%s knows no leader", st.NodeID)}
	}
	base := withScheme(e.admin.Addrs()[0], st.Leader.HTTPAddr)
	lst, err := e.admin.Node(base).Status(ctx)
	if err != nil {
		return leaderSample{err: err}
	}
	s := leaderSample{id: lst.NodeID, commit: lst.CommitIndex, at: time.Now()}
	s.cpu, s.err = e.scrapeCPU(ctx, base)
	return s
}

// leaderDelta adds the leader's CPU use and Raft entries between two
// samples to r, or says why it cannot.
func (e *env) leaderDelta(r *Report, before, after leaderSample, phase time.Duration) {
	switch {
	case before.err != nil || after.err != nil:
		r.note("leader CPU not measured: %v", firstErr(before.err, after.err))
		return
	case before.id != after.id:
		r.note("leader CPU not measured: the leader changed from %s to %s during the run", before.id, after.id)
		return
	}
	wall := after.at.Sub(before.at).Seconds()
	r.result("leader_cpu", 100*(after.cpu-before.cpu)/wall, "% of one core", "process_cpu_seconds_total of "+after.id+" over the heartbeat phase")
	r.result("raft_entries", float64(after.commit-before.commit), "", fmt.Sprintf("committed during the %s heartbeat phase; a heartbeat adds none, lease checkpoints a few", phase))
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

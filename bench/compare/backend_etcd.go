package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdBackend is the do-it-yourself seat semaphore on etcd: a counter key
// holds the seats in use; a holder takes a seat with a lease of its own
// and a transaction that raises the counter only if nobody changed it
// since it was read (compare-and-swap on its mod revision) and writes the
// holder's key under the lease; it gives the seat back with the same CAS
// lowering the counter and deleting its key, then revokes the lease. A
// failed CAS reads the counter in the same transaction and tries again.
type etcdBackend struct {
	cli     *clientv3.Client
	limit   int64
	retries atomic.Int64 // CAS attempts that lost the race
}

const (
	etcdCounter = "/bench/seats/cad/in-use"
	etcdHolders = "/bench/seats/cad/holders/"
	etcdTTL     = 300 // seconds, as the Tally policy's lease TTL
)

func newEtcdBackend(endpoints []string, seats int) (*etcdBackend, error) {
	// Like the Tally driver, talk to the leader: a follower would forward
	// every proposal to it anyway.
	leader, err := findEtcdLeader(endpoints)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{leader}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Delete(ctx, "/bench/", clientv3.WithPrefix()); err != nil {
		cli.Close()
		return nil, err
	}
	if _, err := cli.Put(ctx, etcdCounter, "0"); err != nil {
		cli.Close()
		return nil, err
	}
	return &etcdBackend{cli: cli, limit: int64(seats)}, nil
}

// findEtcdLeader waits up to 60 s for a member that says it leads.
func findEtcdLeader(endpoints []string) (string, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return "", err
	}
	defer cli.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, ep := range endpoints {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := cli.Status(ctx, ep)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return ep, nil
			}
		}
		if time.Now().After(deadline) {
			return "", errors.New("etcd: no leader after 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *etcdBackend) Worker(id int) worker {
	return &etcdWorker{b: b, key: etcdHolders + strconv.Itoa(id)}
}

func (b *etcdBackend) Close() error { return b.cli.Close() }

// etcdWorker remembers the counter as it last saw it (value and mod
// revision), so a CAS needs no read first when nobody else moved it.
type etcdWorker struct {
	b       *etcdBackend
	key     string
	lease   clientv3.LeaseID
	holding bool
	known   bool
	val     int64
	rev     int64
}

func (w *etcdWorker) Step(ctx context.Context) (string, error) {
	if !w.holding {
		return "acquire", w.acquire(ctx)
	}
	return "release", w.release(ctx)
}

func (w *etcdWorker) acquire(ctx context.Context) error {
	if w.lease == 0 {
		g, err := w.b.cli.Grant(ctx, etcdTTL)
		if err != nil {
			return &codedError{"lease_grant", err}
		}
		w.lease = g.ID
	}
	ok, err := w.cas(ctx, +1, clientv3.OpPut(w.key, "held", clientv3.WithLease(w.lease)))
	if err != nil {
		return err
	}
	if !ok {
		// Full: keep the lease for the next try.
		return &codedError{"no_seats_available", errors.New("all seats in use")}
	}
	w.holding = true
	return nil
}

func (w *etcdWorker) release(ctx context.Context) error {
	if _, err := w.cas(ctx, -1, clientv3.OpDelete(w.key)); err != nil {
		return err
	}
	w.holding = false
	if _, err := w.b.cli.Revoke(ctx, w.lease); err != nil {
		w.lease = 0 // it expires by itself; grant a new one next time
		return &codedError{"lease_revoke", err}
	}
	w.lease = 0
	return nil
}

// cas moves the counter by delta together with op, retrying lost races.
// It returns false without writing when a +1 would pass the limit.
func (w *etcdWorker) cas(ctx context.Context, delta int64, op clientv3.Op) (bool, error) {
	fresh := false // the view was read just now, not remembered
	for {
		if !w.known {
			resp, err := w.b.cli.Get(ctx, etcdCounter)
			if err != nil {
				return false, &codedError{"get", err}
			}
			if err := w.see(resp); err != nil {
				return false, err
			}
			fresh = true
		}
		if delta > 0 && w.val+delta > w.b.limit {
			w.known = false
			if !fresh {
				continue // a remembered view may be out of date: read it
			}
			return false, nil
		}
		resp, err := w.b.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(etcdCounter), "=", w.rev)).
			Then(clientv3.OpPut(etcdCounter, strconv.FormatInt(w.val+delta, 10)), op).
			Else(clientv3.OpGet(etcdCounter)).
			Commit()
		if err != nil {
			w.known = false
			return false, &codedError{"txn", err}
		}
		if resp.Succeeded {
			w.val, w.rev = w.val+delta, resp.Header.Revision
			return true, nil
		}
		w.b.retries.Add(1)
		if err := w.see((*clientv3.GetResponse)(resp.Responses[0].GetResponseRange())); err != nil {
			return false, err
		}
		fresh = true
	}
}

// see takes the counter's value and mod revision from a read.
func (w *etcdWorker) see(resp *clientv3.GetResponse) error {
	if len(resp.Kvs) != 1 {
		return &codedError{"counter_missing", fmt.Errorf("counter key has %d values", len(resp.Kvs))}
	}
	v, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return &codedError{"counter_corrupt", err}
	}
	w.val, w.rev, w.known = v, resp.Kvs[0].ModRevision, true
	return nil
}

func (w *etcdWorker) Drain(ctx context.Context) {
	for w.holding && ctx.Err() == nil {
		if err := w.release(ctx); err != nil && w.holding {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if w.lease != 0 {
		_, _ = w.b.cli.Revoke(ctx, w.lease)
		w.lease = 0
	}
}

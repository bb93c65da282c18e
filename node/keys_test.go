package node_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
	"github.com/tallyhq/tally/token"
)

// issued is one token a load worker got, with the rotation phase at the
// moment its request was sent.
type issued struct {
	tok   string
	phase int32 // 0 before the rotation, 1 while it runs, 2 after it answered
}

// keyLoad checks seats out and heartbeats them from every node until stopped.
type keyLoad struct {
	mu     sync.Mutex
	tokens []issued
	errs   []error
	phase  atomic.Int32
	stop   chan struct{}
	done   sync.WaitGroup
}

func startKeyLoad(c *testCluster, key string, workers int) *keyLoad {
	l := &keyLoad{stop: make(chan struct{})}
	for w := 0; w < workers; w++ {
		cl := c.client(w % len(c.nodes))
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				p := l.phase.Load()
				res, err := checkout(cl, key, fmt.Sprintf("w%d-m%d", w, i), "")
				l.record(p, res, err)
				if err != nil {
					continue
				}
				p = l.phase.Load()
				hb, err := cl.Heartbeat(context.Background(), res.Lease.ID, key)
				l.record(p, hb, err)
			}
		}()
	}
	return l
}

func (l *keyLoad) record(phase int32, res *api.LeaseResponse, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, err)
		return
	}
	l.tokens = append(l.tokens, issued{tok: res.Token, phase: phase})
}

func (l *keyLoad) count(phase int32) (n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, it := range l.tokens {
		if it.phase == phase {
			n++
		}
	}
	return n
}

func (l *keyLoad) halt() []issued {
	close(l.stop)
	l.done.Wait()
	return l.tokens
}

func keySet(t *testing.T, cl *client.Client) token.KeySet {
	t.Helper()
	jwks, err := cl.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	jwks2 := make([]token.JWK, len(jwks.Keys))
	for i, k := range jwks.Keys {
		jwks2[i] = token.JWK(k)
	}
	ks, err := token.KeySetFromJWKs(jwks2)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// kidOf reads the kid from a token's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	kid, err := token.KeyIDOfToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

func keysByKID(t *testing.T, cl *client.Client) (map[string]api.SigningKey, uint64) {
	t.Helper()
	list, err := cl.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]api.SigningKey{}
	for _, k := range list.Keys {
		out[k.KID] = k
	}
	return out, list.Epoch
}

// Tokens issued before, during and after a rotation all verify against the
// JWKS; tokens issued after it carry a key of the new epoch; retiring the
// old key removes it from the JWKS; a new leader signs only with a key it
// registered first.
func TestKeyRotationUnderLoad(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	admin := c.clientAll()
	lic := provision(t, admin, 100000, 60)

	// A leadership change while the cluster formed may have registered
	// another epoch-0 key; the one signing now belongs to the leader.
	before, epoch := keysByKID(t, admin)
	if epoch != 0 || len(before) == 0 {
		t.Fatalf("before rotation: epoch %d, keys %+v", epoch, before)
	}
	var oldKID string
	for kid, k := range before {
		if k.Status == api.KeyStatusSigning {
			if oldKID != "" || k.NodeID != c.nodes[c.waitLeader()].id {
				t.Fatalf("signing keys before rotation: %+v", before)
			}
			oldKID = kid
		}
	}
	if oldKID == "" {
		t.Fatalf("no signing key before rotation: %+v", before)
	}

	load := startKeyLoad(c, lic.Key, 3)
	c.eventually(10*time.Second, "tokens before the rotation", func() bool { return load.count(0) >= 20 })
	load.phase.Store(1)
	rot, err := c.client(c.followers()[0]).RotateKeys(ctx) // forwarded to the leader
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	load.phase.Store(2)
	if rot.Epoch != 1 || rot.KID == "" || rot.KID == oldKID {
		t.Fatalf("rotate answered %+v", rot)
	}
	c.eventually(10*time.Second, "tokens after the rotation", func() bool { return load.count(2) >= 20 })
	tokens := load.halt()
	for _, err := range load.errs {
		t.Errorf("load: %v", err)
	}

	ks := keySet(t, admin)
	keys, _ := keysByKID(t, admin)
	for i, it := range tokens {
		claims, err := token.Verify(it.tok, ks, time.Now())
		if err != nil {
			t.Fatalf("token %d (phase %d) does not verify against the JWKS: %v", i, it.phase, err)
		}
		if claims.Subject == "" {
			t.Fatalf("token %d has no lease id", i)
		}
		if it.phase == 2 {
			if k := keys[kidOf(t, it.tok)]; k.Epoch != rot.Epoch {
				t.Fatalf("token %d sent after the rotation answered is signed by %+v, want a key of epoch %d", i, k, rot.Epoch)
			}
		}
	}
	if k := keys[rot.KID]; k.Status != api.KeyStatusSigning || k.Epoch != 1 {
		t.Fatalf("new key = %+v", k)
	}
	if k := keys[oldKID]; k.Status != api.KeyStatusVerifying {
		t.Fatalf("old key = %+v", k)
	}

	// Every node made a key for epoch 1 and dropped its epoch 0 private key.
	c.eventually(10*time.Second, "every node on epoch 1 key files", func() bool {
		for _, tn := range c.nodes {
			if _, err := os.Stat(filepath.Join(tn.dataDir, "signing-key.pem")); !errors.Is(err, os.ErrNotExist) {
				return false
			}
			fi, err := os.Stat(filepath.Join(tn.dataDir, "signing-key-1.pem"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				return false
			}
		}
		return true
	})

	// Retire: the current epoch's key is refused, an unknown kid is 404,
	// the old key goes (from a follower: forwarded).
	fc := c.client(c.followers()[0])
	if _, err := fc.RetireKey(ctx, rot.KID); !errors.Is(err, api.ErrKeyInUse) {
		t.Fatalf("retiring the signing key: %v, want key_in_use", err)
	}
	if _, err := fc.RetireKey(ctx, "no-such-kid"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("retiring an unknown key: %v, want not_found", err)
	}
	ret, err := fc.RetireKey(ctx, oldKID)
	if err != nil || ret.Status != api.KeyStatusRetired || ret.RetiredAt == nil {
		t.Fatalf("retire old key: %+v %v", ret, err)
	}
	// GET /v1/keys is served from each node's memory: every node drops the
	// key once it has applied the retirement.
	c.eventually(10*time.Second, "every node stops serving the retired key", func() bool {
		for _, tn := range c.live() {
			for _, k := range tn.n.Keys().Keys {
				if k.Kid == oldKID {
					return false
				}
			}
		}
		return true
	})
	after := keySet(t, admin)
	if _, ok := after[oldKID]; ok {
		t.Fatal("retired key still served at /v1/keys")
	}
	// A request sent before the rotation may be signed after it, so what
	// counts is each token's kid. The 20 tokens received before the
	// rotation began carry the old one.
	var oldTokens int
	for _, it := range tokens {
		_, err := token.Verify(it.tok, after, time.Now())
		if kidOf(t, it.tok) == oldKID {
			oldTokens++
			if !errors.Is(err, token.ErrUnknownKey) {
				t.Fatalf("token of the retired key: %v, want unknown key", err)
			}
		} else if err != nil {
			t.Fatalf("token of a new-epoch key after retire: %v", err)
		}
	}
	if oldTokens < 20 {
		t.Fatalf("only %d tokens carry the old key, want at least 20", oldTokens)
	}

	// A new leader registers its own epoch 1 key before its first token.
	old := c.waitLeader()
	c.kill(old)
	leader := c.waitLeader()
	cl := c.client(leader)
	res, err := checkout(cl, lic.Key, "after-failover", "")
	if err != nil {
		t.Fatal(err)
	}
	claims, err := token.Verify(res.Token, keySet(t, cl), time.Now())
	if err != nil {
		t.Fatalf("first token of the new leader: %v", err)
	}
	keys, _ = keysByKID(t, cl)
	kid := kidOf(t, res.Token)
	if k := keys[kid]; k.NodeID != c.nodes[leader].id || k.Epoch != 1 || k.Status != api.KeyStatusSigning {
		t.Fatalf("new leader signs with %+v (claims %+v)", k, claims)
	}
	c.checkInvariants()
}

package client

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/token"
)

// fakeCluster is a small in-memory Tally for Seat tests: nodes that all
// answer every client request from one shared state (as followers forward
// to the leader), tokens signed with the current leader's key, a JWKS of
// the keys of every node that has led, one counted feature "cad", and
// leases that expire when their expires_at passes.
type fakeCluster struct {
	t     *testing.T
	nodes []*fakeNode

	mu        sync.Mutex
	ttl       time.Duration
	seats     int
	leases    map[string]api.Lease // live
	ended     map[string]bool      // ended leases, answered 410
	requests  map[string]string    // request id -> lease id
	signers   []*token.Signer      // one per node
	jwks      []api.JWK            // the keys of every node that has led
	leader    int
	dead      map[int]bool
	nextLease int
	keyReads  int
	// knobs
	hbCode   string        // heartbeats answer this error code when set
	noExpiry bool          // leases outlive their expires_at (a new leader re-armed them)
	forger   *token.Signer // signs tokens with a key no JWKS lists, when set
	badSig   bool          // flip a byte of every signature
	wrongSub bool          // tokens name another lease
	tokenTTL time.Duration // token exp this far ahead instead of the lease's expires_at
}

func newFakeCluster(t *testing.T, n, seats int, ttl time.Duration) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{
		t: t, ttl: ttl, seats: seats,
		leases: map[string]api.Lease{}, ended: map[string]bool{}, requests: map[string]string{},
		dead: map[int]bool{},
	}
	for range n {
		fc.signers = append(fc.signers, newSigner(t))
	}
	fc.registerLeaderKey()
	for i := range n {
		fc.nodes = append(fc.nodes, newFakeNode(t, func(f *fakeNode, w http.ResponseWriter, r *http.Request) {
			fc.serve(i, f, w, r)
		}))
	}
	return fc
}

func newSigner(t *testing.T) *token.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return token.NewSigner(priv)
}

func (fc *fakeCluster) registerLeaderKey() {
	j := token.PublicJWK(fc.signers[fc.leader].PublicKey())
	fc.jwks = append(fc.jwks, api.JWK(j))
}

func (fc *fakeCluster) addrs() []string {
	var out []string
	for _, n := range fc.nodes {
		out = append(out, n.URL)
	}
	return out
}

// kill stops node i for good; if it led, the next live node leads and its
// key joins the JWKS.
func (fc *fakeCluster) kill(i int) {
	fc.nodes[i].Close()
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.dead[i] = true
	if fc.leader != i {
		return
	}
	for k := 1; k < len(fc.nodes); k++ {
		if j := (i + k) % len(fc.nodes); !fc.dead[j] {
			fc.leader = j
			fc.registerLeaderKey()
			return
		}
	}
}

func (fc *fakeCluster) set(f func(fc *fakeCluster)) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	f(fc)
}

// revoke ends a lease, as DELETE /v1/leases/{id} would.
func (fc *fakeCluster) revoke(id string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	delete(fc.leases, id)
	fc.ended[id] = true
}

func (fc *fakeCluster) live() []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.reap()
	var ids []string
	for id := range fc.leases {
		ids = append(ids, id)
	}
	return ids
}

func (fc *fakeCluster) keyFetches() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.keyReads
}

// checkouts are every checkout request any node received.
func (fc *fakeCluster) checkouts() []api.CheckoutRequest {
	var out []api.CheckoutRequest
	for _, n := range fc.nodes {
		out = append(out, n.checkouts()...)
	}
	return out
}

func (fc *fakeCluster) count(key string) int {
	total := 0
	for _, n := range fc.nodes {
		total += n.count(key)
	}
	return total
}

// reap ends the leases whose expires_at passed. fc.mu is held.
func (fc *fakeCluster) reap() {
	if fc.noExpiry {
		return
	}
	for id, l := range fc.leases {
		if !time.Now().Before(l.ExpiresAt) {
			delete(fc.leases, id)
			fc.ended[id] = true
		}
	}
}

func (fc *fakeCluster) serve(i int, f *fakeNode, w http.ResponseWriter, r *http.Request) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.reap()
	path := r.URL.Path
	switch {
	case path == "/v1/keys":
		fc.keyReads++
		writeJSON(w, 200, api.JWKS{Keys: fc.jwks})
	case path == "/v1/checkout":
		f.mu.Lock()
		req := f.requests[len(f.requests)-1]
		f.mu.Unlock()
		fc.checkout(w, req)
	case strings.HasSuffix(path, "/heartbeat"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/leases/"), "/heartbeat")
		if fc.hbCode != "" {
			writeErr(w, fc.hbCode, "heartbeat refused by the test")
			return
		}
		l, ok := fc.leases[id]
		switch {
		case ok:
			l.ExpiresAt = time.Now().Add(fc.ttl).UTC()
			fc.leases[id] = l
			fc.answer(w, l)
		case fc.ended[id]:
			writeErr(w, api.CodeLeaseExpired, "the lease has ended")
		default:
			writeErr(w, api.CodeNotFound, "no such lease")
		}
	case strings.HasSuffix(path, "/checkin"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/leases/"), "/checkin")
		if _, ok := fc.leases[id]; !ok && !fc.ended[id] {
			writeErr(w, api.CodeNotFound, "no such lease")
			return
		}
		delete(fc.leases, id)
		fc.ended[id] = true
		writeJSON(w, 200, struct{}{})
	default:
		writeErr(w, api.CodeNotFound, path)
	}
}

// checkout follows the FSM's rules: a known request id answers its lease
// (or 410 once it ended), then the seat count. fc.mu is held.
func (fc *fakeCluster) checkout(w http.ResponseWriter, req api.CheckoutRequest) {
	if id, ok := fc.requests[req.RequestID]; ok && req.RequestID != "" {
		if l, live := fc.leases[id]; live {
			fc.answer(w, l)
		} else {
			writeErr(w, api.CodeLeaseExpired, "lease of request "+req.RequestID+" has ended")
		}
		return
	}
	if len(fc.leases) >= fc.seats {
		writeErr(w, api.CodeNoSeatsAvailable, fmt.Sprintf("all %d seats are in use", fc.seats))
		return
	}
	fc.nextLease++
	now := time.Now().UTC()
	l := api.Lease{ID: fmt.Sprintf("L%d", fc.nextLease), LicenseID: "lic1", Feature: req.Feature,
		Holder: req.Holder, IssuedAt: now, ExpiresAt: now.Add(fc.ttl)}
	fc.leases[l.ID] = l
	fc.requests[req.RequestID] = l.ID
	fc.answer(w, l)
}

// answer writes a lease with a token signed as the knobs say. fc.mu is held.
func (fc *fakeCluster) answer(w http.ResponseWriter, l api.Lease) {
	signer := fc.signers[fc.leader]
	if fc.forger != nil {
		signer = fc.forger
	}
	// Round exp up, so sub-second test TTLs give tokens that verify; the
	// real server rounds down, and its TTLs are whole seconds.
	exp := int64(math.Ceil(float64(l.ExpiresAt.UnixNano()) / 1e9))
	if fc.tokenTTL > 0 {
		exp = time.Now().Add(fc.tokenTTL).Unix()
	}
	sub := l.ID
	if fc.wrongSub {
		sub = "someone-else"
	}
	tok, err := signer.Sign(token.Claims{Issuer: "test", Subject: sub, LicenseID: l.LicenseID,
		Feature: l.Feature, Machine: l.Holder.Machine, IssuedAt: time.Now().Unix(), ExpiresAt: exp})
	if err != nil {
		fc.t.Error(err)
	}
	if fc.badSig {
		b := []byte(tok)
		i := strings.LastIndexByte(tok, '.') + 1
		if b[i] == 'A' { // another base64url letter: still decodes, no longer signs
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		tok = string(b)
	}
	writeJSON(w, 200, api.LeaseResponse{Lease: l, Token: tok})
}

// kidOf returns the key id in a token's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	kid, err := token.KeyIDOfToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/token"
)

// ErrBadToken is wrapped by every error about a lease token that does not
// verify: a signature or key the cluster's JWKS does not vouch for, an
// expired token, or claims that do not match the lease they came with. The
// token package's sentinel (token.ErrBadSignature, token.ErrUnknownKey, ...)
// is wrapped too.
var ErrBadToken = errors.New("tally client: lease token does not verify")

// keyFetches bounds the JWKS fetches one verification may make for an
// unknown key id. A new leader answers with its own key a moment before its
// key is replicated to every node, so one fetch through a lagging follower
// may not know it yet; a forged kid must not make us fetch forever.
const keyFetches = 3

// keyRing caches the cluster's public signing keys. It fetches GET /v1/keys
// on first use and again whenever a token names a key id it does not hold
// (a new leader signs with its own key).
type keyRing struct {
	mu    sync.Mutex // serializes fetches, guards keys and gen
	keys  token.KeySet
	gen   uint64 // bumped by every successful fetch
	fetch int    // fetches made, for tests
}

// VerifyToken checks a lease token against the cluster's public keys and
// returns its claims. The keys are fetched from GET /v1/keys once and again
// when a token names a key id not seen yet. Every failure wraps ErrBadToken
// and the token package's sentinel, except a failure to fetch the keys.
func (c *Client) VerifyToken(ctx context.Context, tok string) (*token.Claims, error) {
	return c.keyring.verify(ctx, c, tok)
}

func (k *keyRing) snapshot() (token.KeySet, uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.gen
}

func (k *keyRing) verify(ctx context.Context, c *Client, tok string) (*token.Claims, error) {
	keys, gen := k.snapshot()
	claims, err := token.Verify(tok, keys, time.Now())
	for attempt := 0; errors.Is(err, token.ErrUnknownKey) && attempt < keyFetches; attempt++ {
		if attempt > 0 {
			if werr := sleepCtx(ctx, backoff(attempt+2)); werr != nil {
				return nil, werr
			}
		}
		var ferr error
		keys, gen, ferr = k.refresh(ctx, c, gen)
		if ferr != nil {
			return nil, fmt.Errorf("tally client: fetching the cluster's keys to check a token: %w", ferr)
		}
		claims, err = token.Verify(tok, keys, time.Now())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	if c.floor != nil {
		// The floor guards offline checks; failing to raise it must not
		// cost the app a seat it holds, and the floor refuses later if
		// it cannot be read.
		_ = c.floor.Observe(time.Unix(claims.IssuedAt, 0))
	}
	return claims, nil
}

// refresh fetches the JWKS unless another caller already did since
// generation seen, and returns the keys and their generation.
func (k *keyRing) refresh(ctx context.Context, c *Client, seen uint64) (token.KeySet, uint64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gen != seen {
		return k.keys, k.gen, nil
	}
	k.fetch++
	jwks, err := c.Keys(ctx)
	if err != nil {
		return nil, 0, err
	}
	ks, err := token.KeySetFromJWKs(toTokenJWKs(jwks.Keys))
	if err != nil {
		return nil, 0, err
	}
	k.keys = ks
	k.gen++
	return k.keys, k.gen, nil
}

func (k *keyRing) fetches() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetch
}

func toTokenJWKs(in []api.JWK) []token.JWK {
	out := make([]token.JWK, len(in))
	for i, j := range in {
		out[i] = token.JWK(j)
	}
	return out
}

// verifyLease checks that resp's token verifies and speaks of resp's lease,
// so nothing in the answer is taken on trust.
func (c *Client) verifyLease(ctx context.Context, resp *api.LeaseResponse) (*token.Claims, error) {
	cl, err := c.VerifyToken(ctx, resp.Token)
	if err != nil {
		return nil, err
	}
	l := resp.Lease
	if cl.Subject != l.ID || cl.LicenseID != l.LicenseID || cl.Feature != l.Feature {
		return nil, fmt.Errorf("%w: token is for lease %q (license %q, feature %q), answer is lease %q (license %q, feature %q)",
			ErrBadToken, cl.Subject, cl.LicenseID, cl.Feature, l.ID, l.LicenseID, l.Feature)
	}
	return cl, nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

package transport

import (
	"context"

	"github.com/tallyhq/tally/api"
)

// KeyBackend is the signing-key administration a node offers. Private keys
// never cross it: answers name keys by kid, node and epoch only.
type KeyBackend interface {
	SigningKeys(ctx context.Context, consistency string) (*api.SigningKeyList, error)
	// RotateKeys and RetireKey are leader-only writes (*NotLeaderError
	// elsewhere, so they are forwarded like every write).
	RotateKeys(ctx context.Context) (*api.RotateKeysResponse, error)
	RetireKey(ctx context.Context, kid string) (*api.SigningKey, error)
}

// keyRoutes registers the signing-key admin endpoints.
func (s *Server) keyRoutes(admin func(string, handlerFunc)) {
	admin("GET /v1/signing-keys", s.listSigningKeys)
	admin("POST /v1/signing-keys/rotate", s.rotateKeys)
	admin("POST /v1/signing-keys/{kid}/retire", s.retireKey)
}

func (s *Server) listSigningKeys(r *request) (answer, error) {
	c, err := r.consistency(adminReadDefault)
	if err != nil {
		return answer{}, err
	}
	return ok(s.cfg.Backend.SigningKeys(r.Context(), c))
}

func (s *Server) rotateKeys(r *request) (answer, error) {
	if err := r.decode(&struct{}{}); err != nil {
		return answer{}, err
	}
	return ok(s.cfg.Backend.RotateKeys(r.Context()))
}

func (s *Server) retireKey(r *request) (answer, error) {
	kid := r.PathValue("kid")
	if err := checkField("kid", kid, true); err != nil {
		return answer{}, err
	}
	return ok(s.cfg.Backend.RetireKey(r.Context(), kid))
}

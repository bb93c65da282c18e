package client

import (
	"context"
	"net/http"

	"github.com/tallyhq/tally/api"
)

// --- signing keys (admin) ---

// SigningKeys lists every token-signing key with its node, epoch and status
// (signing, verifying or retired).
func (c *Client) SigningKeys(ctx context.Context, opts ...ReadOption) (*api.SigningKeyList, error) {
	var out api.SigningKeyList
	if err := c.get(ctx, "/v1/signing-keys", nil, opts, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateKeys starts a new key epoch: every node makes a fresh key, and the
// leader signs with its new key once the call returns. Tokens signed with
// older keys keep verifying until those keys are retired.
func (c *Client) RotateKeys(ctx context.Context) (*api.RotateKeysResponse, error) {
	var out api.RotateKeysResponse
	if err := c.change(ctx, http.MethodPost, "/v1/signing-keys/rotate", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RetireKey removes a key of an older epoch from GET /v1/keys; tokens it
// signed stop verifying. A key of the current epoch is api.ErrKeyInUse.
func (c *Client) RetireKey(ctx context.Context, kid string) (*api.SigningKey, error) {
	var out api.SigningKey
	if err := c.change(ctx, http.MethodPost, "/v1/signing-keys/"+seg(kid)+"/retire", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

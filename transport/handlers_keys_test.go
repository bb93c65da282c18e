package transport

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// keyFake answers the signing-key calls like a node would.
type keyFake struct {
	fakeBackend
	rotate  func() (*api.RotateKeysResponse, error)
	retired []string
}

func (f *keyFake) SigningKeys(_ context.Context, c string) (*api.SigningKeyList, error) {
	return &api.SigningKeyList{Epoch: 1, Keys: []api.SigningKey{
		{KID: "old", NodeID: "n1", Epoch: 0, AddedAt: time.Unix(0, 0).UTC(), Status: api.KeyStatusVerifying},
		{KID: "cur", NodeID: "n1", Epoch: 1, AddedAt: time.Unix(0, 0).UTC(), Status: api.KeyStatusSigning},
	}}, nil
}

func (f *keyFake) RotateKeys(context.Context) (*api.RotateKeysResponse, error) { return f.rotate() }

func (f *keyFake) RetireKey(_ context.Context, kid string) (*api.SigningKey, error) {
	switch kid {
	case "cur":
		return nil, api.Errorf(api.CodeKeyInUse, "key cur belongs to the current epoch")
	case "old":
		f.retired = append(f.retired, kid)
		now := time.Now().UTC()
		return &api.SigningKey{KID: kid, Status: api.KeyStatusRetired, RetiredAt: &now}, nil
	}
	return nil, api.Errorf(api.CodeNotFound, "signing key "+kid+" not found")
}

func TestSigningKeyEndpoints(t *testing.T) {
	// The follower forwards the rotation to the leader, like every write.
	leader := &keyFake{rotate: func() (*api.RotateKeysResponse, error) {
		return &api.RotateKeysResponse{Epoch: 2, KID: "new"}, nil
	}}
	leaderSrv, _ := newTestServer(t, leader)
	follower := &keyFake{rotate: func() (*api.RotateKeysResponse, error) {
		return nil, &NotLeaderError{LeaderAddr: leaderSrv.URL}
	}}
	srv, _ := newTestServer(t, follower)

	cases := []struct {
		name, method, path, auth, body string
		status                         int
		code                           string
		inBody                         string
	}{
		{"list without token", "GET", "/v1/signing-keys", "", "", 401, api.CodeUnauthorized, ""},
		{"list", "GET", "/v1/signing-keys", token, "", 200, "", `"status":"signing"`},
		{"list bad consistency", "GET", "/v1/signing-keys?consistency=eventual", token, "", 400, api.CodeInvalidRequest, ""},
		{"rotate without token", "POST", "/v1/signing-keys/rotate", "wrong", "", 401, api.CodeUnauthorized, ""},
		{"rotate wrong method", "GET", "/v1/signing-keys/rotate", token, "", 405, api.CodeMethodNotAllowed, ""},
		{"rotate with a body it does not take", "POST", "/v1/signing-keys/rotate", token, `{"epoch":9}`, 400, api.CodeInvalidRequest, ""},
		{"rotate, forwarded", "POST", "/v1/signing-keys/rotate", token, "", 200, "", `"epoch":2`},
		{"retire current", "POST", "/v1/signing-keys/cur/retire", token, "", 409, api.CodeKeyInUse, ""},
		{"retire unknown", "POST", "/v1/signing-keys/nope/retire", token, "", 404, api.CodeNotFound, ""},
		{"retire long kid", "POST", "/v1/signing-keys/" + strings.Repeat("k", 300) + "/retire", token, "", 400, api.CodeInvalidRequest, ""},
		{"retire old", "POST", "/v1/signing-keys/old/retire", token, "", 200, "", `"status":"retired"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, tc.method, srv.URL+tc.path, tc.auth, tc.body)
			if r.status != tc.status || r.err.Code != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", r.status, r.err.Code, r.err.Message, tc.status, tc.code)
			}
			if !strings.Contains(r.body, tc.inBody) {
				t.Fatalf("body %s lacks %s", r.body, tc.inBody)
			}
		})
	}
	if len(follower.retired) != 1 || follower.retired[0] != "old" {
		t.Fatalf("retired = %v", follower.retired)
	}
}

func TestCheckoutBorrowCodes(t *testing.T) {
	var got api.CheckoutRequest
	srv, _ := newTestServer(t, &fakeBackend{checkout: func(req api.CheckoutRequest) (*api.LeaseResponse, error) {
		got = req
		if req.BorrowHours > 72 {
			return nil, api.Errorf(api.CodeBorrowNotAllowed, "borrow of 100 hours exceeds the policy's limit of 72 hours")
		}
		return okCheckout(req)
	}})
	body := func(hours int) string {
		b, _ := json.Marshal(map[string]any{"license_key": "K", "feature": "cad", "holder": map[string]string{"machine": "m"}, "borrow_hours": hours})
		return string(b)
	}
	if r := send(t, "POST", srv.URL+"/v1/checkout", "", body(-1)); r.status != 400 || r.err.Code != api.CodeInvalidRequest {
		t.Fatalf("negative borrow: %d %+v", r.status, r.err)
	}
	r := send(t, "POST", srv.URL+"/v1/checkout", "", body(100))
	if r.status != 403 || r.err.Code != api.CodeBorrowNotAllowed || !strings.Contains(r.err.Message, "72 hours") {
		t.Fatalf("borrow over the limit: %d %+v", r.status, r.err)
	}
	if r := send(t, "POST", srv.URL+"/v1/checkout", "", body(48)); r.status != 200 || got.BorrowHours != 48 {
		t.Fatalf("borrow of 48 hours: %d, backend got %+v", r.status, got)
	}
}

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// keyServer answers the signing-key and checkout endpoints and records the
// last request.
func keyServer(t *testing.T) (*httptest.Server, func() recorded) {
	t.Helper()
	var mu sync.Mutex
	var last recorded
	retired := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/signing-keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.SigningKeyList{Epoch: 1, Keys: []api.SigningKey{
			{KID: "kid-old", NodeID: "n1", Epoch: 0, AddedAt: t0, Status: api.KeyStatusRetired, RetiredAt: &retired},
			{KID: "kid-new", NodeID: "n2", Epoch: 1, AddedAt: t0, Status: api.KeyStatusSigning},
		}})
	})
	mux.HandleFunc("POST /v1/signing-keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.RotateKeysResponse{Epoch: 2, KID: "kid-2"})
	})
	mux.HandleFunc("POST /v1/signing-keys/{kid}/retire", func(w http.ResponseWriter, r *http.Request) {
		if kid := r.PathValue("kid"); kid != "kid-old" {
			writeJSON(w, 409, api.ErrorResponse{Error: api.Error{Code: api.CodeKeyInUse, Message: "key " + kid + " belongs to the current epoch"}})
			return
		}
		writeJSON(w, 200, api.SigningKey{KID: "kid-old", NodeID: "n1", Status: api.KeyStatusRetired, RetiredAt: &retired})
	})
	mux.HandleFunc("POST /v1/checkout", func(w http.ResponseWriter, r *http.Request) {
		until := tExpires
		l := aLease
		l.ExpiresAt, l.BorrowedUntil = until, &until
		writeJSON(w, 200, api.LeaseResponse{Lease: l, Token: "signed.token.value"})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), body}
		mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() recorded {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

func TestKeysCommands(t *testing.T) {
	srv, last := keyServer(t)
	addr, tok := "--addr="+srv.URL, "--token=secret"

	code, out, errOut := runCLI(t, "keys", "list", addr, tok)
	if code != 0 {
		t.Fatalf("keys list: exit %d: %s", code, errOut)
	}
	got := collapseSpaces(out)
	for _, want := range []string{
		"KID NODE EPOCH STATUS ADDED RETIRED",
		"kid-old n1 0 retired 2026-01-02T03:04:05Z 2026-02-03T04:05:06Z",
		"kid-new n2 1 signing 2026-01-02T03:04:05Z -",
		"current epoch: 1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("keys list lacks %q:\n%s", want, out)
		}
	}
	if r := last(); r.method+" "+r.path != "GET /v1/signing-keys" || r.auth != "Bearer secret" {
		t.Errorf("keys list sent %s %s auth %q", r.method, r.path, r.auth)
	}
	code, out, _ = runCLI(t, "keys", "list", addr, "--json")
	var list api.SigningKeyList
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Keys) != 2 || list.Epoch != 1 {
		t.Errorf("keys list --json: exit %d, %s", code, out)
	}

	code, out, errOut = runCLI(t, "keys", "rotate", addr, tok)
	if code != 0 || !strings.Contains(out, "Rotated to key epoch 2; the leader signs with key kid-2") {
		t.Errorf("keys rotate: exit %d, out %q, err %q", code, out, errOut)
	}
	if r := last(); r.method+" "+r.path != "POST /v1/signing-keys/rotate" {
		t.Errorf("keys rotate sent %s %s", r.method, r.path)
	}

	code, out, errOut = runCLI(t, "keys", "retire", "kid-old", addr, tok)
	if code != 0 || !strings.Contains(out, "Retired key kid-old (node n1") {
		t.Errorf("keys retire: exit %d, out %q, err %q", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "keys", "retire", "kid-new", addr, tok)
	if code != 1 || !strings.Contains(errOut, "Error: key_in_use: key kid-new belongs to the current epoch") {
		t.Errorf("retiring the current key: exit %d, err %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "keys", "retire", addr); code != 2 {
		t.Errorf("retire without a kid: exit %d, err %q", code, errOut)
	}
}

func TestKeysHelpExplainsProcedure(t *testing.T) {
	code, out, _ := runCLI(t, "keys", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"tally keys rotate", "longest", "tally keys retire KID", "key_in_use", "0600"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys --help lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckoutBorrow(t *testing.T) {
	srv, last := keyServer(t)
	code, out, errOut := runCLI(t, "checkout", "--addr", srv.URL, "--key", "K", "--feature", "cad", "--borrow", "72h")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var req api.CheckoutRequest
	if err := json.Unmarshal(last().body, &req); err != nil || req.BorrowHours != 72 {
		t.Fatalf("checkout body %s (%v), want borrow_hours 72", last().body, err)
	}
	if !strings.Contains(collapseSpaces(out), "borrowed_until "+tExpires.Format(time.RFC3339)) {
		t.Errorf("output lacks borrowed_until:\n%s", out)
	}
	// From the environment too.
	t.Setenv("TALLY_BORROW", "24h")
	if code, _, errOut := runCLI(t, "checkout", "--addr", srv.URL, "--key", "K", "--feature", "cad"); code != 0 {
		t.Fatalf("TALLY_BORROW: exit %d: %s", code, errOut)
	}
	if err := json.Unmarshal(last().body, &req); err != nil || req.BorrowHours != 24 {
		t.Fatalf("checkout body %s, want borrow_hours 24", last().body)
	}
	t.Setenv("TALLY_BORROW", "")
	for _, bad := range []string{"90m", "30m", "0s"} {
		code, _, errOut := runCLI(t, "checkout", "--addr", srv.URL, "--key", "K", "--feature", "cad", "--borrow", bad)
		if code != 2 || !strings.Contains(errOut, "whole number of hours") {
			t.Errorf("--borrow %s: exit %d, err %q", bad, code, errOut)
		}
	}
}

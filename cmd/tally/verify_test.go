package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
	"github.com/tallyhq/tally/token"
	"github.com/tallyhq/tally/token/tokentest"
)

// The shared table of tokentest, through `tally verify`; client runs the
// same table through OfflineVerifier. The CLI reads the wall clock, and the
// fixture's times are hours apart, so the outcome does not depend on when
// the test runs.
func TestVerifyCases(t *testing.T) {
	fx := tokentest.NewFixture(time.Now())
	dir := t.TempDir()
	keys := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(keys, fx.JWKS, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, tc := range fx.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			arg := tc.Input
			if tc.File {
				arg = filepath.Join(dir, "case"+string(rune('a'+i))+".lic")
				if err := os.WriteFile(arg, []byte(tc.Input), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			argv := []string{"verify", arg, "--keys", keys, "--machine", tokentest.ThisMachine}
			if !tc.Floor.IsZero() {
				floor := filepath.Join(t.TempDir(), "time-floor")
				f, _ := token.OpenTimeFloor(floor)
				if err := f.Observe(tc.Floor); err != nil {
					t.Fatal(err)
				}
				argv = append(argv, "--time-floor", floor)
			}
			code, out, errOut := runCLI(t, argv...)
			if tc.Want == nil {
				want := "valid lease token lse_1: "
				if tc.File {
					want = "valid license file lic_1 for Acme Corp: "
				}
				if code != 0 || !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit 0 and one line %q...", code, out, errOut, want)
				}
				return
			}
			reason := client.OfflineReason(tc.Want)
			if code != 1 || !strings.HasPrefix(errOut, "Error: "+reason+": ") || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and Error: %s", code, out, errOut, reason)
			}
		})
	}
}

func TestVerifySummariesAndJSON(t *testing.T) {
	fx := tokentest.NewFixture(time.Now())
	keys := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(keys, fx.JWKS, 0o644); err != nil {
		t.Fatal(err)
	}
	lic := fx.Cases[1] // locked to this machine
	path := filepath.Join(t.TempDir(), "acme.lic")
	if err := os.WriteFile(path, []byte(lic.Input), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "verify", path, "--keys", keys, "--machine", tokentest.ThisMachine)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"product prd_1", "policy pol_1", "features cad=3, viewer", "machine " + tokentest.ThisMachine, "expires 20"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q: %s", want, out)
		}
	}

	// A lease token in a file, as `jq -r .token > lease.tok` writes it.
	tokFile := filepath.Join(t.TempDir(), "lease.tok")
	if err := os.WriteFile(tokFile, []byte(fx.Cases[0].Input+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "verify", tokFile, "--keys", keys, "--machine", tokentest.ThisMachine); code != 0 || !strings.HasPrefix(out, "valid lease token lse_1: license lic_1, feature cad, machine "+tokentest.ThisMachine) {
		t.Errorf("token file: exit %d, %q, %q", code, out, errOut)
	}

	code, out, _ = runCLI(t, "verify", path, "--keys", keys, "--machine", tokentest.ThisMachine, "--json")
	var ok struct {
		Valid   bool
		Kind    string
		License *token.LicenseClaims
	}
	if code != 0 || json.Unmarshal([]byte(out), &ok) != nil || !ok.Valid || ok.Kind != client.KindLicenseFile || ok.License == nil || ok.License.Subject != "lic_1" {
		t.Errorf("--json: exit %d, %s", code, out)
	}
	code, out, _ = runCLI(t, "verify", path, "--keys", keys, "--machine", "fp-elsewhere", "--json")
	var bad struct {
		Valid  bool
		Reason string
	}
	if code != 1 || json.Unmarshal([]byte(out), &bad) != nil || bad.Valid || bad.Reason != "wrong_machine" {
		t.Errorf("--json refusal: exit %d, %s", code, out)
	}
}

// A floor file given to verify rises to the iat of what it accepts.
func TestVerifyRaisesTheTimeFloor(t *testing.T) {
	fx := tokentest.NewFixture(time.Now())
	keys := filepath.Join(t.TempDir(), "jwks.json")
	_ = os.WriteFile(keys, fx.JWKS, 0o644)
	floor := filepath.Join(t.TempDir(), "floor")
	if code, _, errOut := runCLI(t, "verify", fx.Cases[0].Input, "--keys", keys, "--machine", tokentest.ThisMachine, "--time-floor", floor); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	f, err := token.OpenTimeFloor(floor)
	want := time.Unix(tokentest.LeaseClaims(fx.Now).IssuedAt, 0)
	if err != nil || !f.Floor().Equal(want) {
		t.Fatalf("floor = %v (%v), want %v", f.Floor(), err, want)
	}
}

// keysServer serves GET /v1/keys and POST /v1/licenses/{id}/export.
type keysServer struct {
	*httptest.Server
	mu      sync.Mutex
	down    bool // answer 500 to everything
	export  api.ExportLicenseRequest
	auth    string
	license string
}

func newKeysServer(t *testing.T, fx *tokentest.Fixture) *keysServer {
	t.Helper()
	s := &keysServer{}
	now := time.Now()
	claims := tokentest.LicenseClaims(now, "")
	jws, err := fx.Signer.SignLicense(claims)
	if err != nil {
		t.Fatal(err)
	}
	s.license = token.EncodeLicenseFile(jws, claims)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			writeJSON(w, 500, api.ErrorResponse{Error: api.Error{Code: api.CodeInternal, Message: "down"}})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(fx.JWKS)
	})
	mux.HandleFunc("POST /v1/licenses/{id}/export", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.auth = r.Header.Get("Authorization")
		s.export = api.ExportLicenseRequest{}
		_ = json.NewDecoder(r.Body).Decode(&s.export)
		if r.PathValue("id") != "lic_1" {
			writeJSON(w, 404, api.ErrorResponse{Error: api.Error{Code: api.CodeNotFound, Message: "no such license"}})
			return
		}
		writeJSON(w, 200, api.LicenseExport{LicenseFile: s.license, ExpiresAt: time.Unix(claims.ExpiresAt, 0).UTC()})
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestVerifyFetchesAndSavesKeys(t *testing.T) {
	fx := tokentest.NewFixture(time.Now())
	srv := newKeysServer(t, fx)
	t.Setenv("TALLY_ADDR", srv.URL)
	lease := fx.Cases[0].Input

	// Keys from the cluster.
	if code, out, errOut := runCLI(t, "verify", lease, "--machine", tokentest.ThisMachine); code != 0 || !strings.HasPrefix(out, "valid lease token") {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
	// Saved for later, with or without something to verify.
	saved := filepath.Join(t.TempDir(), "jwks.json")
	code, out, errOut := runCLI(t, "verify", "--save-keys", saved)
	if code != 0 || out != "" || !strings.Contains(errOut, "Saved 1 public key(s) to "+saved) {
		t.Fatalf("save: exit %d, %q, %q", code, out, errOut)
	}
	// Offline: the cluster fails (500, which the client does not retry,
	// so the test is quick), the saved keys do the job.
	srv.mu.Lock()
	srv.down = true
	srv.mu.Unlock()
	if code, _, errOut := runCLI(t, "verify", lease, "--keys", saved, "--machine", tokentest.ThisMachine); code != 0 {
		t.Fatalf("with saved keys: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "verify", lease, "--machine", tokentest.ThisMachine); code != 1 || !strings.Contains(errOut, "give --keys FILE") {
		t.Fatalf("cluster gone, no --keys: exit %d, %s", code, errOut)
	}
}

func TestVerifyUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing to do", []string{"verify"}, 2, "give a token or file"},
		{"two arguments", []string{"verify", "a.b.c", "d.e.f"}, 2, "accepts at most 1 arg"},
		{"keys and save-keys", []string{"verify", "a.b.c", "--keys", "k", "--save-keys", "s"}, 2, "exclude each other"},
		{"negative tolerance", []string{"verify", "a.b.c", "--keys", "k", "--tolerance", "-1m"}, 2, "--tolerance"},
		{"missing file", []string{"verify", "/nowhere/acme.lic", "--keys", "k"}, 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
	// A bad keys file names itself.
	bad := filepath.Join(t.TempDir(), "jwks.json")
	_ = os.WriteFile(bad, []byte(`{"keys":[]}`), 0o644)
	if code, _, errOut := runCLI(t, "verify", "a.b.c", "--keys", bad); code != 1 || !strings.Contains(errOut, bad) {
		t.Fatalf("bad keys file: exit %d, %s", code, errOut)
	}
}

func TestLicenseExport(t *testing.T) {
	fx := tokentest.NewFixture(time.Now())
	srv := newKeysServer(t, fx)
	addr := "--addr=" + srv.URL

	code, out, errOut := runCLI(t, "license", "export", "lic_1", addr, "--token", "admin-secret", "--machine", "fp-1", "--until", "2027-01-31")
	if code != 0 || out != srv.license {
		t.Fatalf("exit %d, stdout %q (want the file), stderr %q", code, out, errOut)
	}
	srv.mu.Lock()
	req, auth := srv.export, srv.auth
	srv.mu.Unlock()
	if req.Machine != "fp-1" || req.Until == nil || !req.Until.Equal(time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)) || auth != "Bearer admin-secret" {
		t.Errorf("request = %+v, auth %q", req, auth)
	}

	path := filepath.Join(t.TempDir(), "acme.lic")
	code, out, errOut = runCLI(t, "license", "export", "lic_1", addr, "-o", path)
	if code != 0 || !strings.HasPrefix(out, "Wrote license file for lic_1 to "+path) {
		t.Fatalf("-o: exit %d, %q, %q", code, out, errOut)
	}
	srv.mu.Lock()
	if srv.export.Machine != "" || srv.export.Until != nil {
		t.Errorf("flags not given, yet sent: %+v", srv.export)
	}
	srv.mu.Unlock()
	// The written file verifies.
	keys := filepath.Join(t.TempDir(), "jwks.json")
	_ = os.WriteFile(keys, fx.JWKS, 0o644)
	if code, out, errOut := runCLI(t, "verify", path, "--keys", keys, "--machine", "any"); code != 0 || !strings.HasPrefix(out, "valid license file lic_1") {
		t.Fatalf("verify the export: exit %d, %q, %q", code, out, errOut)
	}

	if code, _, errOut := runCLI(t, "license", "export", "lic_nope", addr); code != 1 || !strings.Contains(errOut, "not_found") {
		t.Errorf("unknown license: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "license", "export", "lic_1", addr, "--until", "soon"); code != 2 {
		t.Errorf("bad --until: exit %d, %s", code, errOut)
	}
}

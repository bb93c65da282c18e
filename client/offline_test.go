package client

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/token"
	"github.com/tallyhq/tally/token/tokentest"
)

// The shared table of tokentest, through the SDK. cmd/tally runs the same
// table through `tally verify`.
func TestOfflineVerifierCases(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fx := tokentest.NewFixture(now)
	for _, tc := range fx.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			v := &OfflineVerifier{Keys: fx.Keys, Machine: tokentest.ThisMachine, Now: func() time.Time { return now }}
			if !tc.Floor.IsZero() {
				v.Floor = floorAt(t, tc.Floor)
			}
			res, err := v.Verify(tc.Input)
			if tc.Want != nil {
				if !errors.Is(err, tc.Want) {
					t.Fatalf("err = %v, want %v", err, tc.Want)
				}
				var oe *OfflineError
				if !errors.As(err, &oe) || oe.Reason != OfflineReason(tc.Want) || oe.Reason == "error" {
					t.Fatalf("err = %#v, want an OfflineError with reason %s", err, OfflineReason(tc.Want))
				}
				if res != nil {
					t.Fatal("result returned with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			wantKind := KindLeaseToken
			if tc.File {
				wantKind = KindLicenseFile
			}
			if res.Kind != wantKind || (res.Lease == nil) == (res.License == nil) {
				t.Fatalf("result = %+v, want one %s", res, wantKind)
			}
		})
	}
}

func floorAt(t *testing.T, at time.Time) *token.TimeFloor {
	t.Helper()
	f, err := token.OpenTimeFloor(filepath.Join(t.TempDir(), "time-floor"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Observe(at); err != nil {
		t.Fatal(err)
	}
	return f
}

// An accepted token raises the floor to its iat, which then catches a clock
// turned back before it.
func TestOfflineVerifierRaisesTheFloor(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fx := tokentest.NewFixture(now)
	floor := floorAt(t, now.Add(-24*time.Hour))
	clock := now
	v := &OfflineVerifier{Keys: fx.Keys, Machine: tokentest.ThisMachine, Floor: floor, Now: func() time.Time { return clock }}

	lease, err := fx.Signer.Sign(tokentest.LeaseClaims(now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(lease); err != nil {
		t.Fatal(err)
	}
	iat := time.Unix(tokentest.LeaseClaims(now).IssuedAt, 0)
	again, err := token.OpenTimeFloor(floor.Path())
	if err != nil || !again.Floor().Equal(iat) {
		t.Fatalf("floor on disk = %v (%v), want the token's iat %v", again.Floor(), err, iat)
	}

	// A token issued long ago, still valid: the clock turned back to before
	// the iat just seen is refused even though the token itself would pass.
	old := tokentest.LeaseClaims(now.Add(-2 * time.Hour))
	old.ExpiresAt = now.Add(time.Hour).Unix()
	oldTok, _ := fx.Signer.Sign(old)
	clock = iat.Add(-token.DefaultClockTolerance - time.Minute)
	_, err = v.Verify(oldTok)
	if !errors.Is(err, token.ErrClockRolledBack) || OfflineReason(err) != "clock_rolled_back" {
		t.Fatalf("err = %v, want clock_rolled_back", err)
	}
	v.Tolerance = time.Hour // a wider tolerance lets it through
	if _, err := v.Verify(oldTok); err != nil {
		t.Fatalf("with an hour of tolerance: %v", err)
	}
}

func TestOfflineVerifierFailsClosedOnAnUnwritableFloor(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fx := tokentest.NewFixture(now)
	dir := filepath.Join(t.TempDir(), "state")
	floor, err := token.OpenTimeFloor(filepath.Join(dir, "time-floor"))
	if err != nil {
		t.Fatal(err)
	}
	// A file where the floor's directory should be: no one, not even
	// root, can write the floor now.
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	v := &OfflineVerifier{Keys: fx.Keys, Machine: tokentest.ThisMachine, Floor: floor, Now: func() time.Time { return now }}
	if _, err := v.Verify(fx.Cases[0].Input); err == nil || OfflineReason(err) != "error" {
		t.Fatalf("err = %v, want a refusal with reason error", err)
	}
}

// A lease token saved to a file keeps its newline; that is not a defect.
func TestOfflineVerifierTrimsALeaseTokenFile(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fx := tokentest.NewFixture(now)
	v := &OfflineVerifier{Keys: fx.Keys, Machine: tokentest.ThisMachine, Now: func() time.Time { return now }}
	res, err := v.Verify(" " + fx.Cases[0].Input + "\r\n")
	if err != nil || res.Kind != KindLeaseToken {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}

func TestLoadKeySetAndKeySetOf(t *testing.T) {
	fx := tokentest.NewFixture(time.Now())
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, fx.JWKS, 0o644); err != nil {
		t.Fatal(err)
	}
	ks, err := LoadKeySet(path)
	if err != nil || len(ks) != 1 || !ks[fx.Signer.KeyID()].Equal(fx.Signer.PublicKey()) {
		t.Fatalf("LoadKeySet = %v, %v", ks, err)
	}
	if _, err := LoadKeySet(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("loaded a missing file")
	}
	j := token.PublicJWK(fx.Signer.PublicKey())
	ks, err = KeySetOf(&api.JWKS{Keys: []api.JWK{api.JWK(j)}})
	if err != nil || !ks[fx.Signer.KeyID()].Equal(fx.Signer.PublicKey()) {
		t.Fatalf("KeySetOf = %v, %v", ks, err)
	}
}

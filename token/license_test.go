package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func seats(n int) *int { return &n }

func testLicense() LicenseClaims {
	return LicenseClaims{
		Issuer:    "tally-test",
		Subject:   "lic-42",
		ProductID: "prd-1",
		Customer:  "Acme Corp",
		PolicyID:  "pol-7",
		Features:  []LicenseFeature{{Name: "cad", Seats: seats(3)}, {Name: "viewer"}},
		Machine:   "fp-this",
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		ExpiresAt: now.Add(30 * 24 * time.Hour).Unix(),
	}
}

func mustSignLicense(t testing.TB, s *Signer, c LicenseClaims) string {
	t.Helper()
	jws, err := s.SignLicense(c)
	if err != nil {
		t.Fatalf("SignLicense: %v", err)
	}
	return jws
}

func TestLicenseRoundTrip(t *testing.T) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	want := testLicense()
	jws := mustSignLicense(t, s, want)

	h, _ := base64.RawURLEncoding.DecodeString(parts(jws)[0])
	if got := `{"alg":"EdDSA","typ":"tally-license+jwt","kid":"` + s.KeyID() + `"}`; string(h) != got {
		t.Fatalf("header = %s, want %s", h, got)
	}
	for name, file := range map[string]string{
		"bare":           jws,
		"bare+newline":   jws + "\n",
		"with comments":  EncodeLicenseFile(jws, want),
		"CRLF":           strings.ReplaceAll(EncodeLicenseFile(jws, want), "\n", "\r\n"),
		"indented, gaps": "\n\n  # hand-written note\n\t" + jws + "  \n\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := VerifyLicense(file, ks, now, "fp-this")
			if err != nil {
				t.Fatalf("VerifyLicense: %v", err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("claims = %+v, want %+v", *got, want)
			}
		})
	}
}

func TestLicenseFileComments(t *testing.T) {
	s := NewSigner(testKey(1))
	c := testLicense()
	c.Customer = "Evil\nCorp\r" // a newline must not start a line of its own
	jws := mustSignLicense(t, s, c)
	file := EncodeLicenseFile(jws, c)

	lines := strings.Split(strings.TrimSuffix(file, "\n"), "\n")
	if last := lines[len(lines)-1]; last != jws {
		t.Fatalf("last line = %q, want the JWS", last)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "# ") {
			t.Fatalf("comment line %q does not start with '# '", l)
		}
	}
	for _, want := range []string{"# customer: Evil?Corp?", "# features: cad=3, viewer", "# machine:  fp-this", "# license:  lic-42"} {
		if !strings.Contains(file, want+"\n") {
			t.Errorf("file lacks %q:\n%s", want, file)
		}
	}
	c.Machine = ""
	if f := EncodeLicenseFile(mustSignLicense(t, s, c), c); !strings.Contains(f, "# machine:  any\n") {
		t.Errorf("floating file does not say machine any:\n%s", f)
	}
}

func TestLicenseMachineLock(t *testing.T) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	locked := mustSignLicense(t, s, testLicense())
	c := testLicense()
	c.Machine = ""
	floating := mustSignLicense(t, s, c)

	for _, tc := range []struct {
		name, file, machine string
		want                error
	}{
		{"locked, this machine", locked, "fp-this", nil},
		{"locked, another machine", locked, "fp-other", ErrWrongMachine},
		{"locked, no fingerprint", locked, "", ErrWrongMachine},
		{"locked, prefix of the fingerprint", locked, "fp-th", ErrWrongMachine},
		{"floating, any machine", floating, "fp-other", nil},
		{"floating, no fingerprint", floating, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyLicense(tc.file, ks, now, tc.machine)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tc.want)
			if got != nil {
				t.Fatal("claims returned with an error")
			}
		})
	}
}

func TestLicenseTimes(t *testing.T) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	c := testLicense()
	file := mustSignLicense(t, s, c)
	exp := time.Unix(c.ExpiresAt, 0)

	for _, tc := range []struct {
		name string
		at   time.Time
		want error
	}{
		{"at nbf", now, nil},
		{"a second before exp", exp.Add(-time.Second), nil},
		{"a second before nbf", now.Add(-time.Second), ErrNotYetValid},
		{"exactly at exp", exp, ErrExpired},
		{"a year after", exp.Add(365 * 24 * time.Hour), ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyLicense(file, ks, tc.at, "fp-this")
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tc.want)
		})
	}
}

func TestSignLicenseRefusesIncompleteClaims(t *testing.T) {
	s := NewSigner(testKey(1))
	for name, mutate := range map[string]func(*LicenseClaims){
		"no exp": func(c *LicenseClaims) { c.ExpiresAt = 0 },
		"no sub": func(c *LicenseClaims) { c.Subject = "" },
	} {
		c := testLicense()
		mutate(&c)
		if _, err := s.SignLicense(c); err == nil {
			t.Errorf("%s: SignLicense accepted it", name)
		}
	}
}

// One key signs both kinds; neither verifier may accept the other's.
func TestLeaseTokenAndLicenseFileAreNotInterchangeable(t *testing.T) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	lease := mustSign(t, s, testClaims())
	license := mustSignLicense(t, s, testLicense())

	_, err := VerifyLicense(lease, ks, now, "fp-this")
	wantErr(t, err, ErrWrongType)
	wantErr(t, err, ErrMalformed)
	if !strings.Contains(err.Error(), "a lease token") {
		t.Errorf("error does not say what it got: %v", err)
	}

	_, err = Verify(license, ks, now)
	wantErr(t, err, ErrWrongType)
	wantErr(t, err, ErrMalformed)
	if !strings.Contains(err.Error(), "a license file") {
		t.Errorf("error does not say what it got: %v", err)
	}

	if !IsLicenseFile(license) || !IsLicenseFile(EncodeLicenseFile(license, testLicense())) || IsLicenseFile(lease) || IsLicenseFile("junk") {
		t.Error("IsLicenseFile tells the kinds apart wrongly")
	}

	// Headers with another typ, or none, are refused by both, even when
	// genuinely signed.
	priv := testKey(1)
	p, _ := json.Marshal(testLicense())
	for _, typ := range []string{``, `"typ":"jwt",`, `"typ":"JWT ",`, `"typ":"tally-license+JWT",`, `"typ":7,`, `"typ":null,`} {
		hdr := `{"alg":"EdDSA",` + typ + `"kid":"` + s.KeyID() + `"}`
		_, err := VerifyLicense(rawToken(priv, hdr, string(p)), ks, now, "fp-this")
		wantErr(t, err, ErrMalformed)
		if typ != `"typ":"JWT ",` && typ != `"typ":"jwt",` {
			continue
		}
		_, err = Verify(rawToken(priv, hdr, string(p)), ks, now)
		wantErr(t, err, ErrWrongType)
	}
}

// The attacks of the lease-token tests, against license files.
func TestLicenseForgeries(t *testing.T) {
	s := NewSigner(testKey(1))
	ks := keySetOf(s.PublicKey())
	jws := mustSignLicense(t, s, testLicense())
	p := parts(jws)

	stretched := testLicense()
	stretched.ExpiresAt += 365 * 24 * 3600
	stretched.Features[0].Seats = seats(300)
	sp, _ := json.Marshal(stretched)
	lp, _ := json.Marshal(testLicense())

	for name, tc := range map[string]struct {
		file string
		want error
	}{
		"tampered payload": {p[0] + "." + enc(string(sp)) + "." + p[2], ErrBadSignature},
		"tampered header":  {enc(`{"alg":"EdDSA","typ":"tally-license+jwt","kid":"`+s.KeyID()+`","x":1}`) + "." + p[1] + "." + p[2], ErrBadSignature},
		"alg none":         {enc(`{"alg":"none","typ":"tally-license+jwt","kid":"`+s.KeyID()+`"}`) + "." + p[1] + ".", ErrBadAlgorithm},
		"other key":        {mustSignLicense(t, NewSigner(testKey(2)), testLicense()), ErrUnknownKey},
		"no sub":           {rawToken(testKey(1), `{"alg":"EdDSA","typ":"tally-license+jwt","kid":"`+s.KeyID()+`"}`, `{"exp":9999999999}`), ErrMalformed},
		"no exp":           {rawToken(testKey(1), `{"alg":"EdDSA","typ":"tally-license+jwt","kid":"`+s.KeyID()+`"}`, `{"sub":"lic"}`), ErrExpired},
		"payload array":    {rawToken(testKey(1), `{"alg":"EdDSA","typ":"tally-license+jwt","kid":"`+s.KeyID()+`"}`, `[`+string(lp)+`]`), ErrMalformed},
		"two token lines":  {jws + "\n" + jws + "\n", ErrMalformed},
		"only comments":    {"# license: lic-42\n", ErrMalformed},
		"empty":            {"", ErrMalformed},
		"comment mid-line": {jws + " # note", ErrMalformed},
		"too long":         {"#" + strings.Repeat("x", maxLicenseFileLen) + "\n" + jws, ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := VerifyLicense(tc.file, ks, now, "fp-this")
			wantErr(t, err, tc.want)
			if c != nil {
				t.Fatal("claims returned with an error")
			}
		})
	}
}

func TestCheckMachine(t *testing.T) {
	if err := CheckMachine("", ""); err != nil {
		t.Fatal(err)
	}
	if err := CheckMachine("a", "a"); err != nil {
		t.Fatal(err)
	}
	err := CheckMachine("a", "b")
	if !errors.Is(err, ErrWrongMachine) || !strings.Contains(err.Error(), `"a"`) || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("err = %v", err)
	}
}

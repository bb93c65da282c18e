package api

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The wire tests pin the JSON the server sends. The SDK decodes with the
// same structs, so a renamed json tag passes every round-trip test and
// still breaks every other client: here it fails against a golden file.
// A golden file changes only with a deliberate, documented API change.

var (
	// t0 has all nine fraction digits; t1 has trailing zeros, which the
	// encoder trims ("…04.12Z"); t2 is a whole second, sent without a
	// fraction. docs/api.md tells clients to parse any number of digits.
	t0 = time.Date(2026, 11, 26, 21, 3, 4, 123456789, time.UTC)
	t1 = time.Date(2026, 11, 26, 21, 4, 4, 120000000, time.UTC)
	t2 = time.Date(2026, 11, 26, 21, 3, 5, 0, time.UTC)
)

func seats(n int) *int { return &n }

// wireCases are one fully filled value of each answer and its golden file.
func wireCases() []struct {
	golden string
	value  any
} {
	issued := time.Date(2026, 11, 26, 21, 3, 4, 0, time.UTC)
	until := time.Date(2026, 11, 27, 5, 3, 4, 0, time.UTC)
	expires := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	return []struct {
		golden string
		value  any
	}{
		{"lease_response.json", LeaseResponse{
			Lease: Lease{ID: "lse_1", LicenseID: "lic_1", Feature: "cad",
				Holder:   Holder{Machine: "ws-9", User: "cy", Hostname: "ws-9.lan", Process: "4242"},
				IssuedAt: t0, ExpiresAt: t1},
			Token: "eyJ.x.y",
		}},
		{"lease_borrowed.json", Lease{ID: "lse_2", LicenseID: "lic_1", Feature: "cad",
			Holder: Holder{Machine: "ws-9"}, IssuedAt: issued, ExpiresAt: until, BorrowedUntil: &until}},
		{"validate_response.json", ValidateResponse{
			Valid: false, Code: CodeFeatureNotEntitled,
			License: &License{ID: "lic_1", PolicyID: "pol_1", ProductID: "prd_1", Customer: "Acme",
				Status: StatusActive, CreatedAt: t0, Seats: map[string]SeatUsage{"cad": {Total: 3, InUse: 2}}},
			Seats:  map[string]SeatUsage{"cad": {Total: 3, InUse: 2}, "viewer": {Total: -1, InUse: 0}},
			NodeID: "n2", AppliedIndex: 18, LastContactMS: 9, Consistency: ConsistencyStale,
		}},
		{"status.json", Status{NodeID: "n2", State: "follower",
			Leader: LeaderInfo{ID: "n1", HTTPAddr: "127.0.0.1:7101"},
			Term:   3, CommitIndex: 35, AppliedIndex: 34, LastContactMS: 6, StateHash: "aeded47e", LiveLeases: 2}},
		{"audit_list.json", AuditList{NodeID: "n1", Records: []AuditRecord{
			{Index: 12, Time: t0, Type: "lease.checkout", LicenseID: "lic_1", LeaseID: "lse_1", Feature: "cad",
				Holder: &Holder{Machine: "ws-9", User: "cy"}, Detail: "borrow hours=8 until=2026-11-27T05:03:04Z",
				PrevHash: "a1a1", Hash: "a374"},
			{Index: 13, Time: t2, Type: "product.created", PrevHash: "a374", Hash: "b0b0"},
		}}},
		// RetryAfter travels as the Retry-After header, never in the body.
		{"error.json", ErrorResponse{Error: Error{Code: CodeNoSeatsAvailable,
			Message: `all 3 seats of "cad" are in use`, RetryAfter: 3}}},
		{"license.json", License{ID: "lic_1", Key: "TLY-NFBG4X-T67NXC-QPJMP4-BYF36Q-GJUUF4WL",
			PolicyID: "pol_1", ProductID: "prd_1", Customer: "Acme", Status: StatusSuspended,
			ExpiresAt: &expires, Metadata: map[string]string{"contract": "C-1042"}, CreatedAt: t0,
			Seats: map[string]SeatUsage{"cad": {Total: 3, InUse: 1}}}},
		{"policy.json", Policy{ID: "pol_1", ProductID: "prd_1", Name: "CAD floating",
			Features:        []Feature{{Name: "cad", Seats: seats(3)}, {Name: "viewer"}},
			LeaseTTLSeconds: 30, SeatRule: SeatRuleMachine, MaxBorrowHours: 72, CreatedAt: t0, UpdatedAt: t2}},
		{"product.json", Product{ID: "prd_1", Name: "Acme CAD", CreatedAt: t0}},
		{"jwks.json", JWKS{Keys: []JWK{{Kty: "OKP", Crv: "Ed25519", Kid: "GTwNAY0IhBmtsOeK",
			X: "0SLSKX0R_hB_QUfzGQlopwvY5tb3XFMWUQxoEMDfnSk", Use: "sig", Alg: "EdDSA"}}}},
		{"members.json", MemberList{Members: []Member{{ID: "n1", GossipAddr: "10.0.0.1:7301",
			HTTPAddr: "10.0.0.1:7101", RaftAddr: "10.0.0.1:7201", Status: "alive"}}}},
		{"raft_configuration.json", RaftConfiguration{Index: 7,
			Servers: []RaftServer{{ID: "n1", Address: "10.0.0.1:7201", Suffrage: "Voter", Leader: true}}}},
	}
}

// TestWireMatchesGolden encodes each answer and compares it, field by field
// and type by type, with its golden file.
func TestWireMatchesGolden(t *testing.T) {
	for _, tc := range wireCases() {
		t.Run(tc.golden, func(t *testing.T) {
			got := encode(t, tc.value)
			want := readGolden(t, tc.golden)
			if diffs := diffJSON("", want, got); len(diffs) > 0 {
				t.Errorf("the encoding differs from testdata/wire/%s:\n  %s", tc.golden, strings.Join(diffs, "\n  "))
			}
		})
	}
}

// TestGoldenHasDesignFields holds the golden files to the field lists of
// DESIGN §6 and docs/api.md, so a golden file cannot be edited along with a
// renamed tag without this failing too. Paths are dotted; a number indexes
// a list.
func TestGoldenHasDesignFields(t *testing.T) {
	for golden, paths := range map[string][]string{
		"lease_response.json": {"token", "lease.id", "lease.license_id", "lease.feature",
			"lease.holder.machine", "lease.holder.user", "lease.holder.hostname", "lease.holder.process",
			"lease.issued_at", "lease.expires_at"},
		"lease_borrowed.json": {"borrowed_until"},
		"validate_response.json": {"valid", "code", "license.id", "seats.cad.total", "seats.cad.in_use",
			"node_id", "applied_index", "last_contact_ms", "consistency"},
		"status.json": {"node_id", "state", "leader.id", "leader.http_addr", "term", "commit_index",
			"applied_index", "last_contact_ms", "state_hash", "live_leases"},
		"audit_list.json": {"node_id", "records.0.index", "records.0.time", "records.0.type",
			"records.0.license_id", "records.0.lease_id", "records.0.feature", "records.0.holder.machine",
			"records.0.detail", "records.0.prev_hash", "records.0.hash"},
		"error.json": {"error.code", "error.message"},
		"license.json": {"id", "key", "policy_id", "product_id", "customer", "status", "expires_at",
			"metadata.contract", "created_at", "seats.cad.total", "seats.cad.in_use"},
		"policy.json": {"id", "product_id", "name", "features.0.name", "features.0.seats",
			"lease_ttl_seconds", "seat_rule", "max_borrow_hours", "created_at", "updated_at"},
		"product.json": {"id", "name", "created_at"},
		"jwks.json":    {"keys.0.kty", "keys.0.crv", "keys.0.kid", "keys.0.x", "keys.0.use", "keys.0.alg"},
		"members.json": {"members.0.id", "members.0.gossip_addr", "members.0.http_addr",
			"members.0.raft_addr", "members.0.status"},
		"raft_configuration.json": {"index", "servers.0.id", "servers.0.address", "servers.0.suffrage",
			"servers.0.leader"},
	} {
		doc := readGolden(t, golden)
		for _, p := range paths {
			if _, ok := lookup(doc, p); !ok {
				t.Errorf("%s: no %s", golden, p)
			}
		}
	}
	// Exactly these keys, no more: the error body is what every client
	// parses before anything else.
	if e, _ := lookup(readGolden(t, "error.json"), "error"); len(e.(map[string]any)) != 2 {
		t.Errorf("error body holds %v, want only code and message", e)
	}
}

// TestOmittedWhenEmpty pins the fields left out when they do not apply,
// and those always sent.
func TestOmittedWhenEmpty(t *testing.T) {
	for _, tc := range []struct {
		value         any
		absent, there []string
	}{
		{Lease{}, []string{"borrowed_until", "holder.user", "holder.hostname", "holder.process"},
			[]string{"holder.machine", "issued_at", "expires_at"}},
		{AuditRecord{}, []string{"license_id", "lease_id", "feature", "holder", "detail"},
			[]string{"index", "time", "type", "prev_hash", "hash"}},
		{ValidateResponse{}, []string{"license"}, []string{"valid", "code", "seats", "node_id", "applied_index"}},
		{License{}, []string{"key", "expires_at", "metadata", "seats"}, []string{"id", "status", "created_at"}},
		{Feature{Name: "viewer"}, []string{"seats"}, []string{"name"}},
	} {
		doc := encode(t, tc.value)
		for _, p := range tc.absent {
			if _, ok := lookup(doc, p); ok {
				t.Errorf("%T: %s is sent when empty", tc.value, p)
			}
		}
		for _, p := range tc.there {
			if _, ok := lookup(doc, p); !ok {
				t.Errorf("%T: %s is missing when empty", tc.value, p)
			}
		}
	}
}

func encode(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func readGolden(t *testing.T, name string) any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "wire", name))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return doc
}

// diffJSON lists where two decoded JSON documents differ, by path.
func diffJSON(path string, want, got any) []string {
	at := path
	if at == "" {
		at = "(top)"
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %#v", at, got)}
		}
		var out []string
		for _, k := range sortedKeys(w, g) {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				out = append(out, fmt.Sprintf("%s: missing (want %#v)", join(path, k), wv))
			case !inW:
				out = append(out, fmt.Sprintf("%s: not in the golden file (got %#v)", join(path, k), gv))
			default:
				out = append(out, diffJSON(join(path, k), wv, gv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %#v, got %#v", at, want, got)}
		}
		var out []string
		for i := range w {
			out = append(out, diffJSON(join(path, strconv.Itoa(i)), w[i], g[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s: want %#v, got %#v", at, want, got)}
	}
	return nil
}

func sortedKeys(a, b map[string]any) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]any{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// lookup follows a dotted path through a decoded JSON document.
func lookup(doc any, path string) (any, bool) {
	cur := doc
	for _, seg := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

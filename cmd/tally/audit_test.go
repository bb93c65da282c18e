package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/fsm"
)

// auditChain builds a real chain of n records by applying commands to a
// state machine: products and a policy and license, then checkouts (records
// with a holder). variant is appended to the ids of the products created
// by command from on, so two variants share the records before that.
func auditChain(t *testing.T, n int, variant string, from int) []api.AuditRecord {
	t.Helper()
	f := fsm.New()
	var idx uint64
	apply := func(typ fsm.CommandType, body any) {
		idx++
		data, err := fsm.Encode(typ, body)
		if err != nil {
			t.Fatal(err)
		}
		if res, ok := f.Apply(&raft.Log{Index: idx, Data: data}).(*fsm.Result); !ok || res.Refusal != nil {
			t.Fatalf("apply %d: %+v", typ, res)
		}
	}
	// Nanoseconds in the times prove the JSON round trip keeps them.
	now := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC).UnixNano()
	apply(fsm.CmdCreateProduct, fsm.CreateProduct{ID: "prd1", Name: "CAD", Time: now})
	apply(fsm.CmdCreatePolicy, fsm.CreatePolicy{Time: now, Policy: fsm.Policy{ID: "pol1", ProductID: "prd1", Name: "p",
		Features: []fsm.Feature{{Name: "cad", Seats: 100}}, LeaseTTL: int64(time.Hour)}})
	apply(fsm.CmdCreateLicense, fsm.CreateLicense{Time: now, License: fsm.License{ID: "lic1", Key: "K", PolicyID: "pol1", Customer: "Acme"}})
	for i := 3; len(f.Audit(0, 0)) < n; i++ {
		now += int64(time.Millisecond) + 7
		if i%3 == 0 {
			apply(fsm.CmdCheckout, fsm.Checkout{LeaseID: fmt.Sprintf("lse%d", i), LicenseKey: "K", Feature: "cad",
				Holder: fsm.Holder{Machine: fmt.Sprintf("m%d", i), User: "ana"}, RequestID: fmt.Sprintf("r%d", i), Time: now})
			continue
		}
		id := fmt.Sprintf("prd%d", i)
		if i >= from {
			id += variant
		}
		apply(fsm.CmdCreateProduct, fsm.CreateProduct{ID: id, Name: "product", Time: now})
	}
	var out []api.AuditRecord
	for _, r := range f.Audit(0, n) {
		a := api.AuditRecord{Index: r.Index, Time: time.Unix(0, r.Time).UTC(), Type: r.Type, LicenseID: r.LicenseID,
			LeaseID: r.LeaseID, Feature: r.Feature, Detail: r.Detail, PrevHash: r.PrevHash, Hash: r.Hash}
		if r.Holder != nil {
			a.Holder = &api.Holder{Machine: r.Holder.Machine, User: r.Holder.User, Hostname: r.Holder.Hostname, Process: r.Holder.Process}
		}
		out = append(out, a)
	}
	if len(out) != n {
		t.Fatalf("chain of %d records, want %d", len(out), n)
	}
	return out
}

// auditNode is a fake node serving its own copy of a chain the way the
// server does: positionally from after, with its node id on every page.
type auditNode struct {
	*httptest.Server
	id      string
	chain   []api.AuditRecord
	members []api.Member
	// pageID, when set, is the node id the audit pages claim.
	pageID string

	mu      sync.Mutex
	queries []string
}

func newAuditNode(t *testing.T, id string, chain []api.AuditRecord) *auditNode {
	t.Helper()
	n := &auditNode{id: id, chain: chain}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.Status{NodeID: n.id, State: "follower"})
	})
	mux.HandleFunc("GET /v1/cluster/members", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.MemberList{Members: n.members})
	})
	mux.HandleFunc("GET /v1/audit", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		n.queries = append(n.queries, r.URL.RawQuery)
		n.mu.Unlock()
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		recs := []api.AuditRecord{}
		if after < len(n.chain) {
			recs = n.chain[after:min(len(n.chain), after+limit)]
		}
		id := n.id
		if n.pageID != "" {
			id = n.pageID
		}
		writeJSON(w, 200, api.AuditList{Records: recs, NodeID: id})
	})
	n.Server = httptest.NewServer(mux)
	t.Cleanup(n.Close)
	return n
}

func (n *auditNode) auditQueries() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.queries...)
}

func addrsOf(nodes ...*auditNode) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.URL)
	}
	return strings.Join(s, ",")
}

func verifyJSON(t *testing.T, args ...string) (int, *auditVerifyReport, string) {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{"audit", "verify", "--json", "--page-size", "4"}, args...)...)
	var rep auditVerifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json output is not a report: %v\n%s\nstderr: %s", err, out, errOut)
	}
	return code, &rep, errOut
}

func TestAuditVerifyHappyPathWithLaggingNode(t *testing.T) {
	chain := auditChain(t, 25, "", 0)
	n1 := newAuditNode(t, "n1", chain)
	n2 := newAuditNode(t, "n2", chain)
	n3 := newAuditNode(t, "n3", chain[:20]) // still applying the log

	code, out, errOut := runCLI(t, "audit", "verify", "--page-size", "4", "--members=false", "--addr", addrsOf(n1, n2, n3))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	got := collapseSpaces(out)
	head := chain[24].Hash
	for _, want := range []string{
		"NODE ADDR RECORDS HEAD_INDEX HEAD_HASH CHAIN",
		"n1 " + n1.URL + " 25 25 " + head + " verified",
		"n3 " + n3.URL + " 20 20 " + chain[19].Hash + " verified, 5 records behind (lagging)",
		"Audit chain verified on 3 nodes: 25 records",
		"Lagging (fine: still applying the log): n3 by 5.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Each node was read from its own memory, page by page.
	for _, n := range []*auditNode{n1, n2, n3} {
		qs := n.auditQueries()
		if len(qs) < 6 {
			t.Errorf("%s: %d audit reads, want paging by 4", n.id, len(qs))
		}
		for _, q := range qs {
			if !strings.Contains(q, "consistency=stale") {
				t.Errorf("%s: audit read %q is not a stale (local) read", n.id, q)
			}
		}
	}

	code, rep, _ := verifyJSON(t, "--members=false", "--addr", addrsOf(n1, n2, n3))
	if code != 0 || !rep.OK || rep.Diverged != nil || len(rep.Nodes) != 3 {
		t.Fatalf("json report: exit %d %+v", code, rep)
	}
	if r := rep.Nodes[1]; r.NodeID != "n2" || r.Records != 25 || r.HeadHash != head || r.Behind != 0 || r.BrokenAt != 0 {
		t.Errorf("n2 row = %+v", r)
	}
	if rep.Nodes[2].Behind != 5 {
		t.Errorf("n3 behind = %d, want 5", rep.Nodes[2].Behind)
	}
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	chain := auditChain(t, 30, "", 0)
	// Valid chains that differ from record 17 (and 8) on: product ids
	// change from command 16 (7), which writes record 17 (8).
	other := auditChain(t, 30, "-forked", 16)
	edited := auditChain(t, 30, "-edited", 7)
	if other[15].Hash != chain[15].Hash || other[16].Hash == chain[16].Hash || edited[7].Hash == chain[7].Hash {
		t.Fatalf("fork fixtures do not fork where the test expects")
	}
	cp := func() []api.AuditRecord { return append([]api.AuditRecord(nil), chain...) }
	tests := []struct {
		name       string
		n2         func() []api.AuditRecord
		brokenAt   uint64 // on n2; 0: its chain links
		diverged   uint64
		brokenText string
	}{
		{"changed field", func() []api.AuditRecord {
			c := cp()
			c[6].Detail = "product=prd-forged"
			return c
		}, 7, 7, "hash does not match its contents"},
		{"changed field, rehashed", func() []api.AuditRecord {
			// Record 8 edited and given a correct hash of its new contents:
			// record 9 no longer links to it.
			c := cp()
			c[7] = edited[7]
			return c
		}, 9, 8, "prev_hash does not match hash of record 8"},
		{"removed record", func() []api.AuditRecord {
			c := cp()
			return append(c[:9], c[10:]...)
		}, 10, 10, "follows record 9, want 10"},
		{"reordered pair", func() []api.AuditRecord {
			c := cp()
			c[11], c[12] = c[12], c[11]
			return c
		}, 12, 12, "follows record 11, want 12"},
		{"removed first record", func() []api.AuditRecord { return cp()[1:] }, 1, 1, "the chain starts at index 2, want 1"},
		{"diverging node", func() []api.AuditRecord { return other }, 0, 17, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The tampered node sits first, so the report must still name it
			// rather than the two nodes that agree.
			n2 := newAuditNode(t, "n2", tt.n2())
			n1 := newAuditNode(t, "n1", chain)
			n3 := newAuditNode(t, "n3", chain)
			code, rep, errOut := verifyJSON(t, "--members=false", "--addr", addrsOf(n2, n1, n3))
			if code != 1 || rep.OK {
				t.Fatalf("exit %d, ok %v: tampering not detected", code, rep.OK)
			}
			if !strings.Contains(errOut, "audit chain NOT verified") {
				t.Errorf("stderr = %q", errOut)
			}
			bad := rep.Nodes[0]
			if bad.BrokenAt != tt.brokenAt || !strings.Contains(bad.Broken, tt.brokenText) {
				t.Errorf("n2 broken at %d (%q), want %d (%q)", bad.BrokenAt, bad.Broken, tt.brokenAt, tt.brokenText)
			}
			for _, good := range rep.Nodes[1:] {
				if good.BrokenAt != 0 || good.Records != 30 || good.HeadHash != chain[29].Hash {
					t.Errorf("untampered node reported %+v", good)
				}
			}
			d := rep.Diverged
			if d == nil || d.Index != tt.diverged || d.Reference != "n1" || strings.Join(d.Differ, ",") != "n2" {
				t.Errorf("diverged = %+v, want at %d: n2 differs from n1", d, tt.diverged)
			}
		})
	}
}

func TestAuditVerifyReadFailures(t *testing.T) {
	chain := auditChain(t, 8, "", 0)
	n1 := newAuditNode(t, "n1", chain)
	dead := newAuditNode(t, "n2", chain)
	deadURL := dead.URL
	dead.Close()
	code, out, errOut := runCLI(t, "audit", "verify", "--members=false", "--addr", n1.URL+","+deadURL)
	if code != 1 || !strings.Contains(collapseSpaces(out), deadURL+" - - - unreachable") ||
		!strings.Contains(errOut, deadURL+" could not be read") {
		t.Errorf("dead node: exit %d\n%s\n%s", code, out, errOut)
	}

	// A page answered by another node than the one asked (a load balancer
	// in front of the address) is refused rather than mixed in.
	lb := newAuditNode(t, "n3", chain)
	lb.pageID = "n1"
	code, rep, _ := verifyJSON(t, "--members=false", "--addr", lb.URL)
	if code != 1 || !strings.Contains(rep.Nodes[0].Error, "came from node n1, not n3") {
		t.Errorf("mixed pages: exit %d, %+v", code, rep.Nodes[0])
	}
}

func TestAuditVerifyFindsMembers(t *testing.T) {
	chain := auditChain(t, 6, "", 0)
	n1 := newAuditNode(t, "n1", chain)
	n2 := newAuditNode(t, "n2", chain)
	n3 := newAuditNode(t, "n3", chain[:5])
	hostPort := func(n *auditNode) string { return strings.TrimPrefix(n.URL, "http://") }
	n1.members = []api.Member{
		{ID: "n1", HTTPAddr: hostPort(n1), Status: "alive"},
		{ID: "n2", HTTPAddr: hostPort(n2), Status: "alive"},
		{ID: "n3", HTTPAddr: hostPort(n3), Status: "suspect"},
		{ID: "n4", HTTPAddr: "127.0.0.1:1", Status: "left"},
	}
	// n1 given twice under two spellings counts once.
	code, rep, errOut := verifyJSON(t, "--addr", n1.URL+","+hostPort(n1))
	if code != 0 || len(rep.Nodes) != 3 {
		t.Fatalf("exit %d, %d nodes, want n1..n3: %+v\n%s", code, len(rep.Nodes), rep, errOut)
	}
	for i, want := range []string{"n1", "n2", "n3"} {
		if rep.Nodes[i].NodeID != want || rep.Nodes[i].Records == 0 {
			t.Errorf("node %d = %+v, want %s with records", i, rep.Nodes[i], want)
		}
	}
	if !strings.Contains(errOut, "are both node n1") {
		t.Errorf("duplicate address not reported: %q", errOut)
	}
	if code, rep, _ := verifyJSON(t, "--members=false", "--addr", n1.URL); code != 0 || len(rep.Nodes) != 1 {
		t.Errorf("--members=false: exit %d, %d nodes", code, len(rep.Nodes))
	}
}

func TestAuditVerifyProgressOnLongChains(t *testing.T) {
	defer func(n uint64) { auditProgressEvery = n }(auditProgressEvery)
	auditProgressEvery = 10
	chain := auditChain(t, 25, "", 0)
	n1 := newAuditNode(t, "n1", chain)
	code, _, errOut := runCLI(t, "audit", "verify", "--members=false", "--addr", n1.URL)
	if code != 0 || !strings.Contains(errOut, "audit verify: 10 records checked on 1 node") ||
		!strings.Contains(errOut, "audit verify: 20 records checked") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// exportLines decodes JSON lines output.
func exportLines(t *testing.T, out string) []api.AuditRecord {
	t.Helper()
	var recs []api.AuditRecord
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r api.AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q is not one audit record: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func assertExported(t *testing.T, got, want []api.AuditRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("exported %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameRecord(&got[i], &want[i]) {
			t.Fatalf("record %d exported as %+v, want %+v", want[i].Index, got[i], want[i])
		}
	}
}

func TestAuditExport(t *testing.T) {
	defer func(n uint64) { auditProgressEvery = n }(auditProgressEvery)
	auditProgressEvery = 10
	chain := auditChain(t, 25, "", 0)
	n1 := newAuditNode(t, "n1", chain)
	addr := "--addr=" + n1.URL

	code, out, errOut := runCLI(t, "audit", "export", addr, "--page-size", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	assertExported(t, exportLines(t, out), chain)
	for _, want := range []string{"audit export: 10 records read (index 10)", "wrote 25 records (index 1 to 25) to stdout"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q: %q", want, errOut)
		}
	}

	// --after continues an earlier export; the record before it anchors
	// the first link.
	code, out, errOut = runCLI(t, "audit", "export", addr, "--after", "20")
	if code != 0 {
		t.Fatalf("--after: exit %d: %s", code, errOut)
	}
	assertExported(t, exportLines(t, out), chain[20:])
	if qs := n1.auditQueries(); !strings.Contains(strings.Join(qs, " "), "after=19&limit=1") {
		t.Errorf("no anchor read of record 20: %v", qs)
	}

	// --since keeps the records stamped at or after it.
	code, out, _ = runCLI(t, "audit", "export", addr, "--since", chain[10].Time.Format(time.RFC3339Nano))
	if code != 0 {
		t.Fatalf("--since: exit %d", code)
	}
	assertExported(t, exportLines(t, out), chain[10:])

	// -o writes the file whole, with no temporary left behind.
	dir := t.TempDir()
	path := dir + "/audit.jsonl"
	code, out, errOut = runCLI(t, "audit", "export", addr, "-o", path)
	if code != 0 || out != "" {
		t.Fatalf("-o: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	assertExported(t, exportLines(t, string(b)), chain)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left in %s: %v", dir, entries)
	}

	if code, _, errOut := runCLI(t, "audit", "export", addr, "--since", "yesterday"); code != 2 || !strings.Contains(errOut, "RFC 3339") {
		t.Errorf("bad --since: exit %d, %q", code, errOut)
	}
}

func TestAuditExportReportsBrokenLinks(t *testing.T) {
	chain := auditChain(t, 25, "", 0)
	forked := auditChain(t, 25, "-forked", 19) // record 20 differs, validly hashed

	tampered := append([]api.AuditRecord(nil), chain...)
	tampered[21].Detail = "product=forged"
	code, out, errOut := runCLI(t, "audit", "export", "--addr", newAuditNode(t, "n1", tampered).URL, "--after", "20")
	if code != 1 || !strings.Contains(errOut, "the chain breaks at index 22") {
		t.Errorf("tampered record: exit %d, stderr %q", code, errOut)
	}
	// The records are still written: they are the evidence.
	assertExported(t, exportLines(t, out), tampered[20:])

	// Record 20 replaced by another validly hashed record: only the anchor
	// read shows that record 21 does not follow it.
	swapped := append([]api.AuditRecord(nil), chain...)
	swapped[19] = forked[19]
	if swapped[19].Hash == chain[19].Hash {
		t.Fatal("fork fixture does not change record 20")
	}
	code, _, errOut = runCLI(t, "audit", "export", "--addr", newAuditNode(t, "n1", swapped).URL, "--after", "20")
	if code != 1 || !strings.Contains(errOut, "the chain breaks at index 21") {
		t.Errorf("broken first link: exit %d, stderr %q", code, errOut)
	}
}

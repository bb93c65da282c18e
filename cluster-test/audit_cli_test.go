package clustertest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	clustertest "github.com/tallyhq/tally/cluster-test"
)

// tallyCLI runs the tally binary with args against the cluster and returns
// its exit code, stdout and stderr.
func tallyCLI(t *testing.T, c *clustertest.Cluster, args ...string) (int, []byte, string) {
	t.Helper()
	cmd := exec.Command(clustertest.Binary(t), append(args, "--token", c.Token())...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run tally %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.Bytes(), errOut.String()
}

// The real binary proves the chain of every node from one address (the
// others found through gossip), exports it whole, and fails once a node
// cannot be read.
func TestAuditVerifyAndExportCLI(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 3)
	lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", 1))
	mustCheckout(t, c, []int{0, 1, 2}, api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: holder(1), RequestID: "audit-1"})
	if _, err := checkout(c, c.Leader(), api.CheckoutRequest{LicenseKey: lic.Key, Feature: "cad", Holder: holder(2), RequestID: "audit-2"}); err == nil {
		t.Fatal("second checkout of a 1-seat feature succeeded")
	}
	c.WaitApplied(c.MaxCommitIndex())
	want, err := c.Audit(0, api.ConsistencyLinearizable)
	if err != nil {
		t.Fatal(err)
	}

	code, out, errOut := tallyCLI(t, c, "audit", "verify", "--json", "--addr", c.Addr(0))
	var rep struct {
		OK    bool `json:"ok"`
		Nodes []struct {
			NodeID   string `json:"node_id"`
			Records  uint64 `json:"records"`
			HeadHash string `json:"head_hash"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s\n%s", err, out, errOut)
	}
	if code != 0 || !rep.OK || len(rep.Nodes) != 3 {
		t.Fatalf("verify: exit %d, ok %v, %d nodes (want 3, two through gossip)\n%s\n%s", code, rep.OK, len(rep.Nodes), out, errOut)
	}
	for _, n := range rep.Nodes {
		if n.Records != uint64(len(want)) || n.HeadHash != want[len(want)-1].Hash {
			t.Errorf("%s: %d records, head %s; want %d, %s", n.NodeID, n.Records, n.HeadHash, len(want), want[len(want)-1].Hash)
		}
	}

	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if code, _, errOut := tallyCLI(t, c, "audit", "export", "-o", path, "--addr", c.Addr(1)); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []api.AuditRecord
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var r api.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		got = append(got, r)
	}
	if len(got) < len(want) || got[len(want)-1].Hash != want[len(want)-1].Hash {
		t.Fatalf("export has %d records, want at least %d ending in %s", len(got), len(want), want[len(want)-1].Hash)
	}
	if err := clustertest.VerifyAuditChain(got); err != nil {
		t.Fatalf("exported chain: %v", err)
	}

	// DESIGN §8 while all three still run: the last check of the whole cluster.
	c.CheckInvariants(t)

	// A node that cannot be read is a failed proof, not a skipped one.
	c.Kill(2)
	code, _, errOut = tallyCLI(t, c, "audit", "verify", "--addr", c.Addr(0))
	if code != 1 || !strings.Contains(errOut, c.NodeID(2)+" could not be read") {
		t.Fatalf("verify with %s down: exit %d, want 1 naming it: %s", c.NodeID(2), code, errOut)
	}
}

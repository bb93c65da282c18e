package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tallyhq/tally/api"
)

// Asking for a leadership transfer that cannot happen is the admin's
// mistake, answered with a 4xx and its code, never a 500.
func TestTransferLeadershipRefusals(t *testing.T) {
	c := newTestCluster(t, 1)
	cl := c.client(0)
	ctx := context.Background()
	for _, tc := range []struct {
		name, id string
		want     *api.Error
	}{
		{"no other voter", "", api.Errorf(api.CodeConflict, "")},
		{"to the leader itself", "n1", api.Errorf(api.CodeConflict, "")},
		{"unknown server", "nobody", api.ErrNotFound},
	} {
		if _, err := cl.TransferLeadership(ctx, tc.id); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want.Code)
		}
	}
	// With no body at all, as curl sends it.
	req, err := http.NewRequest(http.MethodPost, "http://"+c.nodes[0].addrs[0]+"/v1/cluster/transfer-leadership", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error api.Error `json:"error"`
	}
	if resp.StatusCode != http.StatusConflict || json.Unmarshal(body, &e) != nil || e.Error.Code != api.CodeConflict ||
		!strings.Contains(e.Error.Message, "no other voter") {
		t.Fatalf("no body on a single node: %d %s, want 409 conflict", resp.StatusCode, body)
	}
	if st := c.nodes[0].n.Status(false); st.State != "leader" {
		t.Fatalf("the node is %s after refused transfers, want leader", st.State)
	}
}

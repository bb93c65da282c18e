package clustertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// settleTimeout bounds how long CheckInvariants waits for the live nodes
// to reach the same applied index and hold still while it reads them.
const settleTimeout = 60 * time.Second

// CheckInvariants asserts DESIGN.md §8 on the live nodes, once they have
// all applied the highest commit index and hold still while being read:
//
//   - every node's state_hash is the same (same log, same state);
//   - every node returns a byte-identical audit log whose chain verifies
//     (indexes 1..n, prev_hash links, hashes recomputed);
//   - on every node, no (license, feature) has more seats taken than its
//     policy grants, counted both from the node's seat usage and from its
//     live leases under the policy's seat rule, and the two counts agree.
//
// Violations are reported with t.Errorf; a cluster that never settles
// fails with t.Fatalf.
func (c *Cluster) CheckInvariants(t testing.TB) {
	t.Helper()
	for _, v := range c.InvariantViolations() {
		t.Errorf("invariant violated: %s", v)
	}
}

// InvariantViolations is CheckInvariants returning the violations instead
// of failing the test, for the chaos suite, which must count them. A
// cluster that never settles is itself reported as a violation.
func (c *Cluster) InvariantViolations() []string {
	return invariantViolations(func() ([]nodeReader, error) {
		live := c.LiveNodes()
		if len(live) == 0 {
			return nil, errors.New("no live node")
		}
		rs := make([]nodeReader, len(live))
		for k, i := range live {
			rs[k] = c.reader(i)
		}
		return rs, nil
	})
}

// nodeReader is one node as the invariant checks read it: get sends a GET
// for path with the admin token and decodes a 2xx JSON answer into out.
// The docker-compose test reads its containers through the same checks.
type nodeReader struct {
	name string
	get  func(path string, out any) error
}

func (c *Cluster) reader(i int) nodeReader {
	return nodeReader{name: c.NodeID(i), get: func(path string, out any) error {
		return c.Call(i, http.MethodGet, path, nil, out)
	}}
}

// invariantViolations reads the nodes that nodes names (asked again on
// every try) until they settle, then lists every broken invariant.
func invariantViolations(nodes func() ([]nodeReader, error)) []string {
	var snap *clusterView
	err := poll(settleTimeout, func() error {
		rs, err := nodes()
		if err != nil {
			return err
		}
		v, err := readView(rs)
		if err != nil {
			return err
		}
		if err := v.settled(); err != nil {
			return err
		}
		snap = v
		return nil
	})
	if err != nil {
		return []string{fmt.Sprintf("the live nodes did not settle within %s: %v", settleTimeout, err)}
	}
	return snap.violations()
}

// nodeView is what one node said during one pass of CheckInvariants.
type nodeView struct {
	r        nodeReader
	before   *api.Status // with state hash
	after    *api.Status
	audit    []json.RawMessage
	licenses []api.License
	policies []api.Policy
	leases   []api.Lease
}

type clusterView struct {
	nodes []*nodeView
}

// readView reads every node: status (with hash), then its stale audit
// log, licenses, policies and leases, then its status again. If no node's
// applied index moved in between, what was read is one consistent state.
func readView(rs []nodeReader) (*clusterView, error) {
	v := &clusterView{}
	for _, r := range rs {
		var st api.Status
		if err := r.get("/v1/status?hash=true", &st); err != nil {
			return nil, err
		}
		v.nodes = append(v.nodes, &nodeView{r: r, before: &st})
	}
	for _, nv := range v.nodes {
		var err error
		if nv.audit, err = readAuditRaw(nv.r, api.ConsistencyStale); err != nil {
			return nil, err
		}
		var lics api.LicenseList
		if err := nv.r.get("/v1/licenses?consistency=stale", &lics); err != nil {
			return nil, err
		}
		nv.licenses = lics.Licenses
		var pols api.PolicyList
		if err := nv.r.get("/v1/policies?consistency=stale", &pols); err != nil {
			return nil, err
		}
		nv.policies = pols.Policies
		var leases api.LeaseList
		if err := nv.r.get("/v1/leases?consistency=stale", &leases); err != nil {
			return nil, err
		}
		nv.leases = leases.Leases
	}
	for _, nv := range v.nodes {
		var st api.Status
		if err := nv.r.get("/v1/status", &st); err != nil {
			return nil, err
		}
		nv.after = &st
	}
	return v, nil
}

// settled says whether the view is one state: every node at the same
// applied index and none moved while being read. The applied index counts
// state machine commands only; Raft's own entries (an election's no-op, a
// membership change) never reach the state, so the commit index may stay
// ahead of it for good and is not compared.
func (v *clusterView) settled() error {
	want := v.nodes[0].before.AppliedIndex
	for _, nv := range v.nodes {
		b, a := nv.before, nv.after
		switch {
		case b.AppliedIndex != a.AppliedIndex:
			return fmt.Errorf("%s applied %d then %d while being read", b.NodeID, b.AppliedIndex, a.AppliedIndex)
		case b.AppliedIndex != want:
			return fmt.Errorf("%s applied %d, %s applied %d", b.NodeID, b.AppliedIndex, v.nodes[0].before.NodeID, want)
		}
	}
	return nil
}

// violations lists every broken invariant in a settled view.
func (v *clusterView) violations() []string {
	var out []string
	first := v.nodes[0]
	if first.before.StateHash == "" {
		out = append(out, fmt.Sprintf("%s sent no state_hash with ?hash=true", first.before.NodeID))
	}
	for _, nv := range v.nodes[1:] {
		if nv.before.StateHash != first.before.StateHash {
			out = append(out, fmt.Sprintf("state hash differs at applied index %d: %s has %s, %s has %s",
				nv.before.AppliedIndex, first.before.NodeID, first.before.StateHash, nv.before.NodeID, nv.before.StateHash))
		}
	}
	out = append(out, v.auditViolations()...)
	for _, nv := range v.nodes {
		out = append(out, nv.seatViolations()...)
	}
	return out
}

func (v *clusterView) auditViolations() []string {
	var out []string
	first := v.nodes[0]
	for _, nv := range v.nodes {
		id := nv.before.NodeID
		if nv != first {
			if k, ok := firstDifference(first.audit, nv.audit); !ok {
				out = append(out, fmt.Sprintf("audit log of %s (%d records) differs from %s's (%d records) at record #%d",
					id, len(nv.audit), first.before.NodeID, len(first.audit), k))
			} else {
				continue // identical to the first node's, which is verified below
			}
		}
		recs, err := decodeAudit(nv.audit)
		if err != nil {
			out = append(out, fmt.Sprintf("audit log of %s: %v", id, err))
			continue
		}
		if err := VerifyAuditChain(recs); err != nil {
			out = append(out, fmt.Sprintf("audit chain of %s: %v", id, err))
		}
	}
	return out
}

// firstDifference returns the index of the first record where a and b
// differ byte for byte, and true when they do not differ at all.
func firstDifference(a, b []json.RawMessage) (int, bool) {
	for k := 0; k < len(a) && k < len(b); k++ {
		if !bytes.Equal(a[k], b[k]) {
			return k, false
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b)), false
	}
	return 0, true
}

// seatViolations checks one node's seats: for each license and counted
// feature, in_use <= total, and the live leases, counted by the policy's
// seat rule, take exactly in_use seats.
func (nv *nodeView) seatViolations() []string {
	var out []string
	id := nv.before.NodeID
	policies := map[string]api.Policy{}
	for _, p := range nv.policies {
		policies[p.ID] = p
	}
	type slot struct{ license, feature string }
	taken := map[slot]map[string]bool{} // seat keys per (license, feature)
	licenseOf := map[string]api.License{}
	for _, l := range nv.licenses {
		licenseOf[l.ID] = l
	}
	for _, ls := range nv.leases {
		lic, ok := licenseOf[ls.LicenseID]
		if !ok {
			out = append(out, fmt.Sprintf("%s: lease %s names unknown license %s", id, ls.ID, ls.LicenseID))
			continue
		}
		s := slot{ls.LicenseID, ls.Feature}
		if taken[s] == nil {
			taken[s] = map[string]bool{}
		}
		taken[s][seatKey(policies[lic.PolicyID].SeatRule, ls)] = true
	}
	if len(nv.leases) != nv.before.LiveLeases {
		out = append(out, fmt.Sprintf("%s: status says %d live leases, the lease list has %d", id, nv.before.LiveLeases, len(nv.leases)))
	}
	for _, lic := range nv.licenses {
		pol, ok := policies[lic.PolicyID]
		if !ok {
			out = append(out, fmt.Sprintf("%s: license %s names unknown policy %s", id, lic.ID, lic.PolicyID))
			continue
		}
		for _, f := range pol.Features {
			if f.Seats == nil {
				continue
			}
			grant := *f.Seats
			usage := lic.Seats[f.Name]
			fromLeases := len(taken[slot{lic.ID, f.Name}])
			if usage.Total != grant {
				out = append(out, fmt.Sprintf("%s: license %s feature %s reports %d seats total, its policy grants %d", id, lic.ID, f.Name, usage.Total, grant))
			}
			if usage.InUse > grant {
				out = append(out, fmt.Sprintf("%s: license %s feature %s has %d seats in use, more than the %d granted", id, lic.ID, f.Name, usage.InUse, grant))
			}
			if fromLeases > grant {
				out = append(out, fmt.Sprintf("%s: license %s feature %s has live leases taking %d seats, more than the %d granted: %v",
					id, lic.ID, f.Name, fromLeases, grant, sortedKeys(taken[slot{lic.ID, f.Name}])))
			}
			if fromLeases != usage.InUse {
				out = append(out, fmt.Sprintf("%s: license %s feature %s reports %d seats in use, its live leases take %d", id, lic.ID, f.Name, usage.InUse, fromLeases))
			}
		}
	}
	return out
}

// seatKey names the seat a lease occupies under a seat rule.
func seatKey(rule string, ls api.Lease) string {
	switch rule {
	case api.SeatRuleMachine:
		return "machine:" + ls.Holder.Machine
	case api.SeatRuleUser:
		if ls.Holder.User == "" {
			return "machine:" + ls.Holder.Machine
		}
		return "user:" + ls.Holder.User
	}
	return "lease:" + ls.ID
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package clustertest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	clustertest "github.com/tallyhq/tally/cluster-test"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster test: runs the tally binary as several processes")
	}
}

func holder(k int) api.Holder {
	return api.Holder{
		Machine:  fmt.Sprintf("machine-%02d", k),
		User:     fmt.Sprintf("user-%02d", k),
		Hostname: fmt.Sprintf("ws-%02d.example.test", k),
		Process:  fmt.Sprintf("cad.exe:%d", 4000+k),
	}
}

// transient reports whether err may go away on its own: no answer at all,
// or a 503 (no leader yet, leader busy).
func transient(err error) bool {
	var ae *api.Error
	if errors.As(err, &ae) {
		return api.StatusOf(ae.Code) == http.StatusServiceUnavailable
	}
	return err != nil
}

// checkout sends req through node i, once.
func checkout(c *clustertest.Cluster, i int, req api.CheckoutRequest) (*api.LeaseResponse, error) {
	var out api.LeaseResponse
	if err := c.Call(i, http.MethodPost, "/v1/checkout", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// checkoutUntilAnswered sends the same req (same request_id) through the
// given nodes in turn until one gives a definitive answer: a lease, or an
// error that is not transient. It is safe only because the request id makes
// retries exactly-once.
func checkoutUntilAnswered(c *clustertest.Cluster, nodes []int, req api.CheckoutRequest, timeout time.Duration) (*api.LeaseResponse, int, error) {
	deadline := time.Now().Add(timeout)
	for attempt := 0; ; attempt++ {
		i := nodes[attempt%len(nodes)]
		lease, err := checkout(c, i, req)
		if !transient(err) {
			return lease, i, err
		}
		if time.Now().After(deadline) {
			return nil, i, fmt.Errorf("no definitive answer within %s: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond) // back off before the same request goes again
	}
}

// mustCheckout takes a seat through the given nodes or fails the test.
func mustCheckout(t *testing.T, c *clustertest.Cluster, nodes []int, req api.CheckoutRequest) *api.LeaseResponse {
	t.Helper()
	lease, i, err := checkoutUntilAnswered(c, nodes, req, 30*time.Second)
	if err != nil {
		t.Fatalf("checkout %s through %s: %v", req.RequestID, c.NodeID(i), err)
	}
	if lease.Lease.ID == "" || lease.Token == "" {
		t.Fatalf("checkout %s through %s: answer without lease id or token: %+v", req.RequestID, c.NodeID(i), lease)
	}
	return lease
}

// heartbeat renews a lease through node i, once.
func heartbeat(c *clustertest.Cluster, i int, leaseID, key string) (*api.LeaseResponse, error) {
	var out api.LeaseResponse
	err := c.Call(i, http.MethodPost, "/v1/leases/"+url.PathEscape(leaseID)+"/heartbeat", api.LicenseKeyRequest{LicenseKey: key}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// seats reads the seat usage of one feature through node i.
func seats(c *clustertest.Cluster, i int, key, feature, consistency string) (api.SeatUsage, error) {
	var out api.ValidateResponse
	err := c.Call(i, http.MethodPost, "/v1/validate?consistency="+consistency, api.ValidateRequest{LicenseKey: key, Feature: feature}, &out)
	if err != nil {
		return api.SeatUsage{}, err
	}
	u, ok := out.Seats[feature]
	if !ok {
		return api.SeatUsage{}, fmt.Errorf("validate through %s: no seats entry for %q in %+v", c.NodeID(i), feature, out.Seats)
	}
	return u, nil
}

// leaseIDs lists the live leases of a license through node i, linearizably.
func leaseIDs(c *clustertest.Cluster, i int, licenseID string) (map[string]api.Lease, error) {
	var out api.LeaseList
	path := "/v1/licenses/" + url.PathEscape(licenseID) + "/leases?consistency=linearizable"
	if err := c.Call(i, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	m := make(map[string]api.Lease, len(out.Leases))
	for _, ls := range out.Leases {
		m[ls.ID] = ls
	}
	return m, nil
}

// waitSeatFree polls the seat usage of a one-seat feature (linearizable,
// through every node in turn) until it is free, and fails the test if it is
// ever seen free before notBefore — the expires_at the cluster promised —
// or still taken `within` after it. A read that answers "free" before
// notBefore proves an early expiry: its linearization point lies before
// its answer arrived.
func waitSeatFree(t *testing.T, c *clustertest.Cluster, key, feature string, notBefore time.Time, within time.Duration) {
	t.Helper()
	deadline := notBefore.Add(within)
	var takenSeen int
	for k := 0; ; k++ {
		i := k % c.N()
		u, err := seats(c, i, key, feature, api.ConsistencyLinearizable)
		answered := time.Now()
		switch {
		case err != nil && !transient(err):
			t.Fatalf("validate through %s: %v", c.NodeID(i), err)
		case err != nil:
			// no answer this time; ask again
		case u.InUse == 0 && answered.Before(notBefore):
			t.Fatalf("seat of %q seen free through %s at %s, %s before the lease's expires_at %s",
				feature, c.NodeID(i), answered.Format(time.RFC3339Nano), notBefore.Sub(answered), notBefore.Format(time.RFC3339Nano))
		case u.InUse == 0:
			t.Logf("seat free %s after expires_at (taken in %d reads before)", answered.Sub(notBefore).Round(time.Millisecond), takenSeen)
			if takenSeen == 0 {
				// Only a very slow machine gets here: the first read
				// answered after expires_at. Nothing was proved early.
				t.Logf("warning: the seat was never seen taken before it expired")
			}
			return
		default:
			takenSeen++
		}
		if answered.After(deadline) {
			t.Fatalf("seat of %q still taken %s after expires_at %s (%+v)", feature, within, notBefore.Format(time.RFC3339Nano), u)
		}
		time.Sleep(50 * time.Millisecond) // poll cadence
	}
}

// expiryRecord finds the lease.expired audit record of a lease, reading
// node i's log linearizably.
func expiryRecord(c *clustertest.Cluster, i int, leaseID string) (*api.AuditRecord, error) {
	recs, err := c.Audit(i, api.ConsistencyLinearizable)
	if err != nil {
		return nil, err
	}
	var found *api.AuditRecord
	for k := range recs {
		r := &recs[k]
		if r.LeaseID != leaseID {
			continue
		}
		switch r.Type {
		case "lease.expired":
			if found != nil {
				return nil, fmt.Errorf("lease %s expired twice: records %d and %d", leaseID, found.Index, r.Index)
			}
			found = r
		case "lease.checkin", "lease.revoked":
			return nil, fmt.Errorf("lease %s ended by %s (record %d), not by expiry", leaseID, r.Type, r.Index)
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no lease.expired record for lease %s in %d records", leaseID, len(recs))
	}
	return found, nil
}

// countAudit counts the records of one type for one license.
func countAudit(recs []api.AuditRecord, licenseID, typ string) int {
	n := 0
	for _, r := range recs {
		if r.LicenseID == licenseID && r.Type == typ {
			n++
		}
	}
	return n
}

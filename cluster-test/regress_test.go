package clustertest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
	clustertest "github.com/tallyhq/tally/cluster-test"
)

// Found by the chaos suite: a leader frozen past an election woke up still
// believing it led, and answered a heartbeat from its stale memory, renewing
// a lease the new leader had already expired. A heartbeat answer must be
// confirmed by a quorum; the woken node may answer 503 or forward, never 200.
func TestDeposedLeaderDoesNotRenewExpiredLease(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 3)
	lic := c.ProvisionLicense(2*time.Second, clustertest.Seats("cad", 1))
	old := c.Leader()
	var res api.LeaseResponse
	err := c.Call(old, http.MethodPost, "/v1/checkout", api.CheckoutRequest{
		LicenseKey: lic.Key, Feature: "cad", Holder: holder(1), RequestID: "deposed-1",
	}, &res)
	if err != nil {
		t.Fatalf("checkout: %v", err)
	}

	c.Pause(old)
	// The others elect a leader, which re-arms the lease with a full TTL and,
	// with no heartbeat, expires it.
	var survivor int
	for _, i := range c.LiveNodes() {
		if i != old {
			survivor = i
		}
	}
	clustertest.Eventually(t, 30*time.Second, "the lease expires under the new leader", func() error {
		var leases api.LeaseList
		if err := c.Call(survivor, http.MethodGet, "/v1/leases?consistency=linearizable", nil, &leases); err != nil {
			return err
		}
		if len(leases.Leases) != 0 {
			return errors.New("the lease is still live")
		}
		return nil
	})

	// Queue a heartbeat at the frozen node (the kernel accepts the
	// connection and buffers the request while the process is stopped),
	// then wake it: its first answer must not renew the lease.
	conn, err := net.DialTimeout("tcp", c.Addr(old), 5*time.Second)
	if err != nil {
		t.Fatalf("dial the frozen node: %v", err)
	}
	defer conn.Close()
	body, _ := json.Marshal(api.LicenseKeyRequest{LicenseKey: lic.Key})
	req, _ := http.NewRequest(http.MethodPost, "http://"+c.Addr(old)+"/v1/leases/"+res.Lease.ID+"/heartbeat", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := req.Write(conn); err != nil {
		t.Fatalf("write the heartbeat: %v", err)
	}
	c.Resume(old)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("the woken, deposed leader renewed a lease the new leader had expired: %s", answer)
	}
	t.Logf("heartbeat at the woken node: %d %s", resp.StatusCode, answer)
	c.CheckInvariants(t)
}

// The same bug, caught at its root: a leader whose followers have all gone
// silent keeps its title for up to the leader lease (250 ms by default),
// and in that window it answered heartbeats from memory. A heartbeat
// answer now waits for a quorum to confirm the leadership.
func TestHeartbeatNeedsQuorum(t *testing.T) {
	skipShort(t)
	c := clustertest.New(t, 3)
	lic := c.ProvisionLicense(time.Minute, clustertest.Seats("cad", 1))
	leader := c.Leader()
	var res api.LeaseResponse
	if err := c.Call(leader, http.MethodPost, "/v1/checkout", api.CheckoutRequest{
		LicenseKey: lic.Key, Feature: "cad", Holder: holder(1), RequestID: "quorum-1",
	}, &res); err != nil {
		t.Fatalf("checkout: %v", err)
	}
	followers := c.Followers()
	for _, f := range followers {
		c.Pause(f)
	}
	// Answers the followers gave before the freeze may still arrive for a
	// round trip and rightly confirm the leader. 150 ms later they have,
	// and the leader still holds its title (its lease is 250 ms): the
	// window the bug lived in. The wait is the scenario, not a condition.
	time.Sleep(150 * time.Millisecond)
	var hb api.LeaseResponse
	err := c.Call(leader, http.MethodPost, "/v1/leases/"+res.Lease.ID+"/heartbeat",
		api.LicenseKeyRequest{LicenseKey: lic.Key}, &hb)
	for _, f := range followers {
		c.Resume(f)
	}
	if err == nil {
		t.Fatal("a leader whose followers were all frozen renewed a lease")
	}
	t.Logf("heartbeat without a quorum: %v", err)
	c.CheckInvariants(t)
}

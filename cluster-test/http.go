package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// callTimeout bounds one plain HTTP call; a paused node costs this much.
const callTimeout = 10 * time.Second

// Call sends one request to node i and no other: no retry, no failover,
// so a test can say "through node i". in (if not nil) is sent as JSON; a
// 2xx answer is decoded into out (if not nil). A non-2xx answer is returned
// as *api.Error; anything else is a transport error. The admin token is
// always sent; client endpoints ignore it.
func (c *Cluster) Call(i int, method, path string, in, out any) error {
	raw, err := c.CallRaw(i, method, path, in)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s on %s: decode answer: %w", method, path, c.NodeID(i), err)
	}
	return nil
}

// CallRaw is Call returning the 2xx body as is.
func (c *Cluster) CallRaw(i int, method, path string, in any) ([]byte, error) {
	nd := c.node(i)
	return callRaw(c.hc, nd.id, nd.httpAddr, c.token, method, path, in)
}

// callRaw sends one request to the node named name at addr; see Call.
func callRaw(hc *http.Client, name, addr, token, method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s on %s: %w", method, path, name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s on %s: reading answer: %w", method, path, name, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var er api.ErrorResponse
		if json.Unmarshal(raw, &er) != nil || er.Error.Code == "" {
			return nil, &api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("HTTP %d without an error body: %.200s", resp.StatusCode, raw)}
		}
		if got, want := resp.StatusCode, api.StatusOf(er.Error.Code); got != want {
			// A code under the wrong status is a server bug: answer a code no
			// test expects, so errors.Is on the right code cannot pass.
			return nil, &api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("HTTP %d for code %s (want %d): %s", got, er.Error.Code, want, er.Error.Message)}
		}
		return nil, &er.Error
	}
	return raw, nil
}

// Status asks node i for its status.
func (c *Cluster) Status(i int) (*api.Status, error) {
	var st api.Status
	if err := c.Call(i, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// StatusWithHash asks node i for its status including the state hash.
func (c *Cluster) StatusWithHash(i int) (*api.Status, error) {
	var st api.Status
	if err := c.Call(i, http.MethodGet, "/v1/status?hash=true", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// poll calls cond every pollEvery until it returns nil or timeout passes,
// and then returns cond's last error.
func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(pollEvery)
	}
}

// Eventually polls cond until it returns nil, failing the test with cond's
// last error if timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

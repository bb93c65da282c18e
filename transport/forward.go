package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/tallyhq/tally/api"
)

// hopHeaders are copied from a forwarded answer back to the client.
var hopHeaders = []string{"Content-Type", "Retry-After", "WWW-Authenticate"}

// forward replays r to the leader and copies its answer. It is the only
// place a request moves between nodes. A leader that refuses the
// connection never saw the request, so forward asks the node for the next
// leader and tries again: after a leader crash, followers still name it
// until the election ends, and this keeps that window off the client.
func (s *Server) forward(w http.ResponseWriter, r *request, leaderAddr string) string {
	if r.Header.Get(forwardedHeader) != "" {
		// Leadership moved while the request was in flight: let the client
		// retry rather than bounce between nodes.
		return writeError(w, &api.Error{Code: api.CodeNoLeader, Message: "leadership changed during the request; retry", RetryAfter: 1})
	}
	for attempt := 0; ; attempt++ {
		if leaderAddr == "" {
			return writeError(w, &api.Error{Code: api.CodeNoLeader, Message: "no leader is known; retry shortly", RetryAfter: 1})
		}
		resp, err := s.send(r, leaderAddr)
		if err == nil {
			defer resp.Body.Close()
			s.metrics.forwards.WithLabelValues("ok").Inc()
			for _, h := range hopHeaders {
				if v := resp.Header.Get(h); v != "" {
					w.Header().Set(h, v)
				}
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			return "forwarded"
		}
		s.metrics.forwards.WithLabelValues("error").Inc()
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" || attempt >= maxForwardAttempts {
			s.log.Warn("forward to leader failed", "leader", leaderAddr, "err", err)
			return writeError(w, &api.Error{Code: api.CodeNoLeader, Message: "the leader did not answer; retry shortly", RetryAfter: 1})
		}
		leaderAddr = s.cfg.Backend.LeaderAddr(r.Context(), leaderAddr)
	}
}

// maxForwardAttempts bounds the re-resolutions of one forwarded request.
const maxForwardAttempts = 3

func (s *Server) send(r *request, leaderAddr string) (*http.Response, error) {
	var body io.Reader = bytes.NewReader(r.body)
	client := s.fwd
	if r.upload != nil {
		body, client = io.NewSectionReader(r.upload, 0, r.uploadSize), forwardUploads
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, baseURL(leaderAddr)+r.URL.RequestURI(), body)
	if err != nil {
		return nil, err
	}
	if r.upload != nil {
		out.ContentLength = r.uploadSize
	}
	for _, h := range []string{"Content-Type", "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			out.Header.Set(h, v)
		}
	}
	out.Header.Set(forwardedHeader, "1")
	return client.Do(out)
}

// baseURL accepts "host:port" or a full URL.
func baseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}

// ReadIndexClient asks a leader for its read index over HTTP: the follower's
// half of a linearizable read.
type ReadIndexClient struct {
	HTTP  *http.Client
	Token string // the admin token every node shares
}

// ReadIndex returns the leader's read index once the leader has confirmed
// its leadership: the index of its last applied command (not its commit
// index; see Backend.ReadIndex).
func (c *ReadIndexClient) ReadIndex(ctx context.Context, leaderAddr string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(leaderAddr)+"/v1/internal/read-index", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read index from leader: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e api.ErrorResponse
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		return 0, fmt.Errorf("read index from leader: status %d %s", resp.StatusCode, e.Error.Code)
	}
	var a readIndexAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return 0, fmt.Errorf("read index from leader: %w", err)
	}
	return a.Index, nil
}

package transport

import (
	"strconv"
	"strings"

	"github.com/tallyhq/tally/api"
)

func invalid(msg string) error { return api.Errorf(api.CodeInvalidRequest, msg) }

// maxField bounds free-text fields so one request cannot bloat the log.
const maxField = 256

func checkField(name, v string, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return invalid(name + " is required")
	}
	if len(v) > maxField {
		return invalid(name + " is longer than " + strconv.Itoa(maxField) + " bytes")
	}
	return nil
}

func (s *Server) checkout(r *request) (answer, error) {
	var req api.CheckoutRequest
	if err := r.decode(&req); err != nil {
		return answer{}, err
	}
	for _, f := range []struct {
		name, v  string
		required bool
	}{
		{"license_key", req.LicenseKey, true},
		{"feature", req.Feature, true},
		{"holder.machine", req.Holder.Machine, true},
		{"holder.user", req.Holder.User, false},
		{"holder.hostname", req.Holder.Hostname, false},
		{"holder.process", req.Holder.Process, false},
		{"request_id", req.RequestID, false},
	} {
		if err := checkField(f.name, f.v, f.required); err != nil {
			return answer{}, err
		}
	}
	if err := checkSeconds("ttl_seconds", req.TTLSeconds, false); err != nil {
		return answer{}, err
	}
	if req.BorrowHours < 0 {
		return answer{}, invalid("borrow_hours must not be negative")
	}
	res, err := s.cfg.Backend.Checkout(r.Context(), req)
	if err != nil {
		return answer{}, err
	}
	return answer{body: res}, nil
}

func (s *Server) leaseKey(r *request) (string, string, error) {
	var req api.LicenseKeyRequest
	if err := r.decode(&req); err != nil {
		return "", "", err
	}
	if err := checkField("license_key", req.LicenseKey, true); err != nil {
		return "", "", err
	}
	return r.PathValue("id"), req.LicenseKey, nil
}

func (s *Server) heartbeat(r *request) (answer, error) {
	id, key, err := s.leaseKey(r)
	if err != nil {
		return answer{}, err
	}
	res, err := s.cfg.Backend.Heartbeat(r.Context(), id, key)
	if err != nil {
		return answer{}, err
	}
	s.metrics.heartbeats.Inc()
	return answer{body: res}, nil
}

func (s *Server) checkin(r *request) (answer, error) {
	id, key, err := s.leaseKey(r)
	if err != nil {
		return answer{}, err
	}
	if err := s.cfg.Backend.Checkin(r.Context(), id, key); err != nil {
		return answer{}, err
	}
	return answer{body: struct{}{}}, nil
}

func (s *Server) validate(r *request) (answer, error) {
	var req api.ValidateRequest
	if err := r.decode(&req); err != nil {
		return answer{}, err
	}
	if err := checkField("license_key", req.LicenseKey, true); err != nil {
		return answer{}, err
	}
	if err := checkField("feature", req.Feature, false); err != nil {
		return answer{}, err
	}
	if err := checkField("machine", req.Machine, false); err != nil {
		return answer{}, err
	}
	c, err := r.consistency(api.ConsistencyStale)
	if err != nil {
		return answer{}, err
	}
	res, err := s.cfg.Backend.Validate(r.Context(), req, c)
	if err != nil {
		return answer{}, err
	}
	return answer{body: res}, nil
}

func (s *Server) keys(r *request) (answer, error) {
	return answer{body: s.cfg.Backend.Keys()}, nil
}

func (s *Server) status(r *request) (answer, error) {
	withHash := r.URL.Query().Get("hash") == "true"
	return answer{body: s.cfg.Backend.Status(withHash)}, nil
}

// readIndex serves the leader's half of a follower's linearizable read.
// It must not be forwarded: only the leader can answer it.
func (s *Server) readIndex(r *request) (answer, error) {
	idx, err := s.cfg.Backend.ReadIndex(r.Context())
	if _, ok := err.(*NotLeaderError); ok {
		return answer{}, api.Errorf(api.CodeNoLeader, "this node is not the leader")
	}
	if err != nil {
		return answer{}, err
	}
	return answer{body: readIndexAnswer{Index: idx}}, nil
}

type readIndexAnswer struct {
	Index uint64 `json:"index"`
}

func itoa(n int) string { return strconv.Itoa(n) }

package transport

import (
	"net/http"

	"github.com/tallyhq/tally/api"
)

func (s *Server) members(r *request) (answer, error) {
	return answer{body: api.MemberList{Members: nonNil(s.cfg.Backend.Members())}}, nil
}

func (s *Server) raftConfiguration(r *request) (answer, error) {
	return ok(s.cfg.Backend.RaftConfiguration())
}

func (s *Server) transferLeadership(r *request) (answer, error) {
	var req api.TransferLeadershipRequest
	if err := r.decode(&req); err != nil {
		return answer{}, err
	}
	if err := s.cfg.Backend.TransferLeadership(r.Context(), req.ID); err != nil {
		return answer{}, err
	}
	return answer{body: s.cfg.Backend.Status(false)}, nil
}

func (s *Server) removePeer(r *request) (answer, error) {
	return ok(struct{}{}, s.cfg.Backend.RemovePeer(r.Context(), r.PathValue("id")))
}

// snapshot streams this node's state as a versioned msgpack snapshot.
func (s *Server) snapshot(r *request) (answer, error) {
	return answer{body: rawBody(func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="tally.snap"`)
		if err := s.cfg.Backend.WriteSnapshot(w); err != nil {
			s.log.Error("snapshot stream failed", "err", err)
		}
	})}, nil
}

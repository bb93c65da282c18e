package transport

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/tallyhq/tally/api"
)

// MaxSnapshotBytes caps a snapshot upload. MaxBodyBytes does not apply to
// it: a state of a million leases is hundreds of megabytes.
const MaxSnapshotBytes = 4 << 30

// snapshotLimit is MaxSnapshotBytes; tests lower it.
var snapshotLimit int64 = MaxSnapshotBytes

const restorePattern = "PUT /v1/cluster/snapshot"

// forwardUploads forwards uploads to the leader. Unlike Server.fwd it has
// no overall timeout: sending gigabytes and restoring them takes as long as
// it takes, and the client's own request bounds it.
var forwardUploads = &http.Client{}

// restoreRoute serves the snapshot upload. It does not read the body into
// memory as wrap does: it spools it to a temporary file under
// Config.SpoolDir and hands the backend an io.ReaderAt. A follower forwards
// the file to the leader through forward(), like any write.
func (s *Server) restoreRoute() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		start := time.Now()
		code := s.serveRestore(w, hr)
		s.metrics.requests.WithLabelValues(restorePattern, code).Observe(time.Since(start).Seconds())
	})
}

func (s *Server) serveRestore(w http.ResponseWriter, hr *http.Request) string {
	if !s.authorized(hr) {
		return denyAdmin(w, hr)
	}
	f, size, err := s.spool(w, hr.Body)
	if f != nil {
		defer os.Remove(f.Name())
		defer f.Close()
	}
	if err != nil {
		return writeError(w, s.publicError(err))
	}
	res, err := s.cfg.Backend.RestoreSnapshot(hr.Context(), f, size)
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		return s.forward(w, &request{Request: hr, upload: f, uploadSize: size}, nl.LeaderAddr)
	}
	if err != nil {
		return writeError(w, s.publicError(err))
	}
	writeJSON(w, http.StatusOK, res)
	return "ok"
}

// spool copies the body, at most MaxSnapshotBytes, into a new temporary
// file. The caller removes the file, also when spool fails.
func (s *Server) spool(w http.ResponseWriter, body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp(s.cfg.SpoolDir, "tally-restore-*.snap")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, http.MaxBytesReader(w, io.NopCloser(body), snapshotLimit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return f, n, api.Errorf(api.CodeTooLarge, "the snapshot exceeds 4 GiB")
	case err != nil:
		return f, n, api.Errorf(api.CodeInvalidRequest, "reading the snapshot: "+err.Error())
	case n == 0:
		return f, n, api.Errorf(api.CodeInvalidRequest, "the body must be a snapshot file saved by tally operator snapshot save")
	}
	return f, n, nil
}

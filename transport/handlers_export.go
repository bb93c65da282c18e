package transport

import (
	"unicode"

	"github.com/tallyhq/tally/api"
)

// exportLicense signs an offline license file. The node refuses unknown,
// revoked and suspended licenses and checks until against the license's
// expiry; here only the shape of the request is checked.
func (s *Server) exportLicense(r *request) (answer, error) {
	var req api.ExportLicenseRequest
	if err := r.decode(&req); err != nil {
		return answer{}, err
	}
	if err := checkField("machine", req.Machine, false); err != nil {
		return answer{}, err
	}
	for _, c := range req.Machine {
		// The fingerprint is compared byte for byte offline: a space or
		// control character is a copy-and-paste accident, not a machine.
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return answer{}, invalid("machine must not contain spaces or control characters")
		}
	}
	return ok(s.cfg.Backend.ExportLicense(r.Context(), r.PathValue("id"), req))
}

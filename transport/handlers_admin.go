package transport

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/api"
)

// adminReads default to linearizable: an admin who just created something
// expects to see it on any node.
const adminReadDefault = api.ConsistencyLinearizable

func (s *Server) createProduct(r *request) (answer, error) {
	var req api.CreateProductRequest
	if err := r.decode(&req); err != nil {
		return answer{}, err
	}
	if err := checkField("name", req.Name, true); err != nil {
		return answer{}, err
	}
	p, err := s.cfg.Backend.CreateProduct(r.Context(), req)
	return created(p, err)
}

func created(v any, err error) (answer, error) {
	if err != nil {
		return answer{}, err
	}
	return answer{status: http.StatusCreated, body: v}, nil
}

func ok(v any, err error) (answer, error) {
	if err != nil {
		return answer{}, err
	}
	return answer{body: v}, nil
}

func (s *Server) listProducts(r *request) (answer, error) {
	c, err := r.consistency(adminReadDefault)
	if err != nil {
		return answer{}, err
	}
	ps, err := s.cfg.Backend.Products(r.Context(), c)
	return ok(api.ProductList{Products: nonNil(ps)}, err)
}

func (s *Server) getProduct(r *request) (answer, error) {
	c, err := r.consistency(adminReadDefault)
	if err != nil {
		return answer{}, err
	}
	return ok(s.cfg.Backend.Product(r.Context(), r.PathValue("id"), c))
}

func checkFeatures(fs []api.Feature) error {
	if len(fs) == 0 {
		return invalid("features must name at least one feature")
	}
	for _, f := range fs {
		if err := checkField("features[].name", f.Name, true); err != nil {
			return err
		}
		if f.Seats != nil && *f.Seats < 0 {
			return invalid("features[].seats must not be negative")
		}
	}
	return nil
}

func checkSeatRule(rule string) error {
	switch rule {
	case "", api.SeatRuleProcess, api.SeatRuleMachine, api.SeatRuleUser:
		return nil
	}
	return invalid("seat_rule must be process, machine or user")
}

func (s *Server) createPolicy(r *request) (answer, error) {
	var req api.CreatePolicyRequest
	if err := r.decode(&req); err != nil {
		return answer{}, err
	}
	if err := checkField("product_id", req.ProductID, true); err != nil {
		return answer{}, err
	}
	if err := checkField("name", req.Name, true); err != nil {
		return answer{}, err
	}
	if err := checkFeatures(req.Features); err != nil {
		return answer{}, err
	}
	if err := checkSeconds("lease_ttl_seconds", req.LeaseTTLSeconds, true); err != nil {
		return answer{}, err
	}
	if err := checkSeatRule(req.SeatRule); err != nil {
		return answer{}, err
	}
	if err := checkBorrowHours(req.MaxBorrowHours); err != nil {
		return answer{}, err
	}
	if err := checkDuration(req.DurationSeconds); err != nil {
		return answer{}, err
	}
	return created(s.cfg.Backend.CreatePolicy(r.Context(), req))
}

func (s *Server) updatePolicy(r *request) (answer, error) {
	var req api.UpdatePolicyRequest
	if err := r.decode(&req); err != nil {
		if strings.Contains(err.Error(), `unknown field "product_id"`) {
			// Every license issued on the policy names its product: moving
			// the policy would relicense them all to another product.
			return answer{}, invalid("product_id cannot be changed: a policy belongs to its product; create a policy on the other product")
		}
		return answer{}, err
	}
	if req == (api.UpdatePolicyRequest{}) {
		// Nothing to change would still be an audited policy.updated.
		return answer{}, invalid("nothing to change: give at least one of name, features, lease_ttl_seconds, seat_rule, max_borrow_hours, duration_seconds")
	}
	if req.Name != nil {
		if err := checkField("name", *req.Name, true); err != nil {
			return answer{}, err
		}
	}
	if req.Features != nil {
		if err := checkFeatures(*req.Features); err != nil {
			return answer{}, err
		}
	}
	if req.LeaseTTLSeconds != nil {
		if err := checkSeconds("lease_ttl_seconds", *req.LeaseTTLSeconds, true); err != nil {
			return answer{}, err
		}
	}
	if req.SeatRule != nil {
		if err := checkSeatRule(*req.SeatRule); err != nil {
			return answer{}, err
		}
	}
	if req.MaxBorrowHours != nil {
		if err := checkBorrowHours(*req.MaxBorrowHours); err != nil {
			return answer{}, err
		}
	}
	if req.DurationSeconds != nil {
		if err := checkDuration(*req.DurationSeconds); err != nil {
			return answer{}, err
		}
	}
	return ok(s.cfg.Backend.UpdatePolicy(r.Context(), r.PathValue("id"), req))
}

func (s *Server) listPolicies(r *request) (answer, error) {
	c, err := r.consistency(adminReadDefault)
	if err != nil {
		return answer{}, err
	}
	ps, err := s.cfg.Backend.Policies(r.Context(), c)
	return ok(api.PolicyList{Policies: nonNil(ps)}, err)
}

func (s *Server) getPolicy(r *request) (answer, error) {
	c, err := r.consistency(adminReadDefault)
	if err != nil {
		return answer{}, err
	}
	return ok(s.cfg.Backend.Policy(r.Context(), r.PathValue("id"), c))
}

func (s *Server) createLicense(r *request) (answer, error) {
	var req api.CreateLicenseRequest
	if err := r.decode(&req); err != nil {
		return answer{}, err
	}
	if err := checkField("policy_id", req.PolicyID, true); err != nil {
		return answer{}, err
	}
	if err := checkField("customer", req.Customer, true); err != nil {
		return answer{}, err
	}
	if err := checkExpiry(req.ExpiresAt); err != nil {
		return answer{}, err
	}
	if err := checkOverrides(req.Overrides); err != nil {
		return answer{}, err
	}
	if len(req.Metadata) > 64 {
		return answer{}, invalid("metadata holds at most 64 entries")
	}
	for k, v := range req.Metadata {
		if err := checkField("metadata key", k, true); err != nil {
			return answer{}, err
		}
		if err := checkField("metadata value", v, false); err != nil {
			return answer{}, err
		}
	}
	return created(s.cfg.Backend.CreateLicense(r.Context(), req))
}

func (s *Server) listLicenses(r *request) (answer, error) {
	c, err := r.consistency(adminReadDefault)
	if err != nil {
		return answer{}, err
	}
	ls, err := s.cfg.Backend.Licenses(r.Context(), c)
	return ok(api.LicenseList{Licenses: nonNil(ls)}, err)
}

func (s *Server) getLicense(r *request) (answer, error) {
	c, err := r.consistency(adminReadDefault)
	if err != nil {
		return answer{}, err
	}
	return ok(s.cfg.Backend.License(r.Context(), r.PathValue("id"), c))
}

func (s *Server) setStatus(status string) handlerFunc {
	return func(r *request) (answer, error) {
		return ok(s.cfg.Backend.SetLicenseStatus(r.Context(), r.PathValue("id"), status))
	}
}

func (s *Server) licenseLeases(r *request) (answer, error) {
	return s.leases(r, r.PathValue("id"))
}

func (s *Server) listLeases(r *request) (answer, error) {
	return s.leases(r, r.URL.Query().Get("license_id"))
}

func (s *Server) leases(r *request, licenseID string) (answer, error) {
	c, err := r.consistency(adminReadDefault)
	if err != nil {
		return answer{}, err
	}
	ls, err := s.cfg.Backend.Leases(r.Context(), licenseID, c)
	return ok(api.LeaseList{Leases: nonNil(ls)}, err)
}

func (s *Server) revokeLease(r *request) (answer, error) {
	return ok(struct{}{}, s.cfg.Backend.RevokeLease(r.Context(), r.PathValue("id")))
}

// maxAuditPage bounds one audit answer.
const maxAuditPage = 10000

func (s *Server) audit(r *request) (answer, error) {
	c, err := r.consistency(adminReadDefault)
	if err != nil {
		return answer{}, err
	}
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return answer{}, invalid("after must be a non-negative integer")
		}
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit <= 0 {
			return answer{}, invalid("limit must be a positive integer")
		}
	}
	limit = min(limit, maxAuditPage)
	recs, err := s.cfg.Backend.Audit(r.Context(), after, limit, c)
	if err != nil {
		return answer{}, err
	}
	// node_id lets `tally audit verify` check that each page came from the
	// node it asked, not a neighbour behind a load balancer.
	return ok(api.AuditList{Records: nonNil(recs), NodeID: s.cfg.Backend.Status(false).NodeID}, nil)
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

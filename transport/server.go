package transport

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tallyhq/tally/api"
)

// MaxBodyBytes caps every request body.
const MaxBodyBytes = 1 << 20

// forwardedHeader marks a request one node has already forwarded.
const forwardedHeader = "X-Tally-Forwarded"

// Config configures the HTTP server.
type Config struct {
	Backend    Backend
	AdminToken string
	// Gatherer serves /metrics; Registerer receives this package's metrics.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Logger     *slog.Logger
	// ForwardTimeout bounds one forwarded request.
	ForwardTimeout time.Duration
	// SpoolDir holds snapshot uploads while they are restored; empty means
	// the system's temporary directory.
	SpoolDir string
}

// Server is the HTTP API of one node.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	metrics *metrics
	fwd     *http.Client
	log     *slog.Logger
}

// NewServer builds the handler tree.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = 10 * time.Second
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:     cfg,
		mux:     http.NewServeMux(),
		metrics: newMetrics(cfg.Registerer),
		fwd:     &http.Client{Timeout: cfg.ForwardTimeout},
		log:     cfg.Logger,
	}
	s.routes()
	return s
}

// ServeHTTP implements http.Handler. Requests no route takes get the JSON
// error body too: 405 with Allow when the path exists for another method,
// else 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isClean(r.URL.Path) {
		// ServeMux would route the cleaned path: a 307 to it (so
		// DELETE /v1/leases//heartbeat would revoke lease "heartbeat") or
		// a 405 naming another route's method. No endpoint has an empty,
		// "." or ".." segment, so the path names none.
		writeError(w, api.Errorf(api.CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path+" (empty, . or .. path segment)"))
		return
	}
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, api.Errorf(api.CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path))
		return
	}
	writeError(w, api.Errorf(api.CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path))
}

// isClean reports whether p is already in the form ServeMux cleans paths
// to: no empty, "." or ".." segment (a trailing slash is kept).
func isClean(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

func (s *Server) routes() {
	open := func(pattern string, h handlerFunc) { s.mux.Handle(pattern, s.wrap(pattern, false, h)) }
	admin := func(pattern string, h handlerFunc) { s.mux.Handle(pattern, s.wrap(pattern, true, h)) }

	open(checkoutRoute, s.checkout)
	open("POST /v1/leases/{id}/heartbeat", s.heartbeat)
	open("POST /v1/leases/{id}/checkin", s.checkin)
	open("POST /v1/validate", s.validate)
	open("GET /v1/keys", s.keys)
	open("GET /v1/status", s.status)

	admin("POST /v1/products", s.createProduct)
	admin("GET /v1/products", s.listProducts)
	admin("GET /v1/products/{id}", s.getProduct)
	admin("POST /v1/policies", s.createPolicy)
	admin("GET /v1/policies", s.listPolicies)
	admin("GET /v1/policies/{id}", s.getPolicy)
	admin("PATCH /v1/policies/{id}", s.updatePolicy)
	admin("POST /v1/licenses", s.createLicense)
	admin("GET /v1/licenses", s.listLicenses)
	admin("GET /v1/licenses/{id}", s.getLicense)
	admin("POST /v1/licenses/{id}/suspend", s.setStatus(api.StatusSuspended))
	admin("POST /v1/licenses/{id}/reinstate", s.setStatus(api.StatusActive))
	admin("POST /v1/licenses/{id}/revoke", s.setStatus(api.StatusRevoked))
	admin("GET /v1/licenses/{id}/leases", s.licenseLeases)
	admin("POST /v1/licenses/{id}/export", s.exportLicense)
	admin("GET /v1/leases", s.listLeases)
	admin("DELETE /v1/leases/{id}", s.revokeLease)
	admin("GET /v1/audit", s.audit)
	// Node to node: each call makes the leader contact a quorum, so it
	// takes the shared admin token like any other privileged call.
	admin("GET /v1/internal/read-index", s.readIndex)

	admin("GET /v1/cluster/members", s.members)
	admin("GET /v1/cluster/raft", s.raftConfiguration)
	admin("POST /v1/cluster/transfer-leadership", s.transferLeadership)
	admin("DELETE /v1/cluster/raft/{id}", s.removePeer)
	admin("GET /v1/cluster/snapshot", s.snapshot)
	s.mux.Handle(restorePattern, s.restoreRoute())
	s.keyRoutes(admin)
	s.licenseUpdateRoutes(admin)

	gatherer := s.cfg.Gatherer
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
}

// request is what a handler sees: the HTTP request plus its body, read once
// so that forward() can replay it.
type request struct {
	*http.Request
	body []byte
	// upload, when set, is a spooled body too large for memory (restore.go).
	upload     io.ReaderAt
	uploadSize int64
	rd         bytes.Reader // decode's reader over body, here to save an allocation
}

// decode reads the JSON body into v; an empty body decodes to the zero value.
func (r *request) decode(v any) error {
	if len(bytes.TrimSpace(r.body)) == 0 {
		return nil
	}
	r.rd.Reset(r.body)
	dec := json.NewDecoder(&r.rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return api.Errorf(api.CodeInvalidRequest, "malformed JSON body: "+err.Error())
	}
	// Not dec.More(): it reports false before a stray '}' or ']', so
	// `{} }` would pass (found by FuzzUpdatePolicyBody).
	if len(bytes.TrimSpace(r.body[dec.InputOffset():])) > 0 {
		return api.Errorf(api.CodeInvalidRequest, "trailing data after the JSON body")
	}
	return nil
}

// consistency reads ?consistency=, defaulting to def.
func (r *request) consistency(def string) (string, error) {
	c := r.URL.Query().Get("consistency")
	switch c {
	case "":
		return def, nil
	case api.ConsistencyStale, api.ConsistencyLinearizable:
		return c, nil
	}
	return "", api.Errorf(api.CodeInvalidRequest, "consistency must be stale or linearizable")
}

// answer is a handler's success: a status and a JSON value.
type answer struct {
	status int
	body   any
}

type handlerFunc func(r *request) (answer, error)

// wrap is the one place where bodies are capped, auth is checked, errors are
// written and leader-only requests are forwarded.
func (s *Server) wrap(pattern string, needsAdmin bool, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		start := time.Now()
		code := s.serve(w, hr, needsAdmin, h)
		s.metrics.requests.WithLabelValues(pattern, code).Observe(time.Since(start).Seconds())
		if pattern == checkoutRoute {
			// Counted here, not in the handler, so that checkouts refused
			// before the backend (malformed, too large) are counted too.
			s.metrics.checkouts.WithLabelValues(code).Inc()
		}
	})
}

const checkoutRoute = "POST /v1/checkout"

func (s *Server) serve(w http.ResponseWriter, hr *http.Request, needsAdmin bool, h handlerFunc) string {
	if needsAdmin && !s.authorized(hr) {
		return denyAdmin(w, hr)
	}
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	forwarded := false
	defer func() {
		// A forwarded body may still be read by the client's transport
		// after forward returns (a leader answering before it read it all):
		// that buffer is left to the GC.
		if !forwarded && buf.Cap() <= maxPooledBody {
			bodyBufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, hr.Body, MaxBodyBytes)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return writeError(w, api.Errorf(api.CodeTooLarge, "request body exceeds 1 MiB"))
		}
		return writeError(w, api.Errorf(api.CodeInvalidRequest, "reading body: "+err.Error()))
	}
	r := &request{Request: hr, body: buf.Bytes()}
	ans, err := h(r)
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		forwarded = true
		return s.forward(w, r, nl.LeaderAddr)
	}
	if err != nil {
		return writeError(w, s.publicError(err))
	}
	if ans.status == 0 {
		ans.status = http.StatusOK
	}
	if raw, ok := ans.body.(rawBody); ok {
		raw(w)
		return "ok"
	}
	writeJSON(w, ans.status, ans.body)
	return "ok"
}

// bodyBufs holds request body buffers between requests. A body is only
// read during its request (decode copies what it keeps), so its buffer
// can serve the next one; buffers grown past maxPooledBody by a large
// body are dropped rather than kept.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 64 << 10

// rawBody lets a handler stream its own answer (the snapshot).
type rawBody func(w http.ResponseWriter)

// publicError turns any error into one safe to show: *api.Error as is,
// anything else an opaque 500 whose detail goes to the log only.
func (s *Server) publicError(err error) *api.Error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	s.log.Error("request failed", "err", err)
	return api.Errorf(api.CodeInternal, "internal error")
}

func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.AdminToken == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.cfg.AdminToken)) == 1
}

// denyAdmin answers 401 to a request without the admin token, with the
// Bearer challenge of RFC 6750.
func denyAdmin(w http.ResponseWriter, hr *http.Request) string {
	challenge := `Bearer realm="tally"`
	if hr.Header.Get("Authorization") != "" {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	return writeError(w, api.Errorf(api.CodeUnauthorized, "missing or wrong admin bearer token"))
}

// jsonContentType is shared by every answer (Header.Set would allocate
// the slice each time); nothing writes into a header value in place.
var jsonContentType = []string{"application/json"}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// writeError writes the error body and returns the code for metrics.
func writeError(w http.ResponseWriter, e *api.Error) string {
	if e.Code == api.CodeNoLeader || e.Code == api.CodeRateLimited || e.Code == api.CodeTimeout {
		ra := e.RetryAfter
		if ra <= 0 {
			ra = 1
		}
		w.Header().Set("Retry-After", itoa(ra))
	}
	if e.Code == api.CodeUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		// Every 401 needs a challenge (RFC 7235). One denyAdmin did not
		// set is an unknown license key: the credential of the client
		// endpoints, sent in the body, so no standard scheme names it.
		w.Header().Set("WWW-Authenticate", `License-Key realm="tally"`)
	}
	writeJSON(w, e.Status(), api.ErrorResponse{Error: *e})
	return e.Code
}

package client

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/token"
)

// Defaults of Config.
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultRetryFor       = 15 * time.Second
)

// Config says which nodes to talk to and how patiently.
type Config struct {
	// Addrs are the cluster's node addresses, "host:port" or
	// "http(s)://host:port". Any node answers any request.
	Addrs []string
	// Token is the admin bearer token; desktop calls do not need it.
	Token string
	// HTTPClient is used for every request; nil means a client of our own.
	HTTPClient *http.Client
	// RequestTimeout bounds one attempt against one node (default 5s). For
	// Snapshot it bounds the wait for the response headers only.
	RequestTimeout time.Duration
	// RetryFor is the total time one call may spend retrying across nodes
	// (default 15s). A negative value means one attempt, no retries.
	RetryFor time.Duration
	// TimeFloor, when set, is raised to the issue time of every lease token
	// this client verifies (VerifyToken, and so every Seat's checkout and
	// heartbeat), so that OfflineVerifier with the same floor refuses a
	// token later if the machine's clock is turned back.
	TimeFloor *token.TimeFloor
}

// Client talks to a Tally cluster. It is safe for concurrent use.
type Client struct {
	addrs          []string // normalized base URLs
	token          string
	hc             *http.Client
	requestTimeout time.Duration
	retryFor       time.Duration
	// preferred is the index of the address that last answered.
	preferred atomic.Int32
	// err is returned by every call of a client that could not be built
	// (Node with a bad address).
	err error
	// keyring caches the cluster's token-signing keys (keyring.go).
	keyring keyRing
	floor   *token.TimeFloor
}

// New builds a Client from cfg.
func New(cfg Config) (*Client, error) {
	var addrs []string
	for _, a := range cfg.Addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		u, err := normalizeAddr(a)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, u)
	}
	if len(addrs) == 0 {
		return nil, errors.New("tally client: no node address given")
	}
	c := &Client{
		addrs:          addrs,
		token:          cfg.Token,
		hc:             cfg.HTTPClient,
		requestTimeout: cfg.RequestTimeout,
		retryFor:       cfg.RetryFor,
		floor:          cfg.TimeFloor,
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.requestTimeout <= 0 {
		c.requestTimeout = DefaultRequestTimeout
	}
	if c.retryFor == 0 {
		c.retryFor = DefaultRetryFor
	}
	return c, nil
}

// Node returns a client with the same settings pinned to one address: it
// retries on that node only and never fails over. Use it to ask a given node
// (its status, its stale reads). A bad address makes every call fail.
func (c *Client) Node(addr string) *Client {
	n := &Client{
		token:          c.token,
		hc:             c.hc,
		requestTimeout: c.requestTimeout,
		retryFor:       c.retryFor,
	}
	u, err := normalizeAddr(strings.TrimSpace(addr))
	if err != nil {
		n.err = err
		return n
	}
	n.addrs = []string{u}
	return n
}

// Addrs returns the normalized base URLs the client uses.
func (c *Client) Addrs() []string { return append([]string(nil), c.addrs...) }

// normalizeAddr turns "host:port" or "http(s)://host:port" into a base URL
// without a trailing slash.
func normalizeAddr(a string) (string, error) {
	raw := a
	if !strings.Contains(a, "://") {
		raw = "http://" + a
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("tally client: bad address %q: %v", a, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("tally client: bad address %q: scheme must be http or https", a)
	}
	if u.Host == "" || u.Port() == "" && !strings.Contains(a, "://") {
		return "", fmt.Errorf("tally client: bad address %q: want host:port", a)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("tally client: bad address %q: want host:port with no path", a)
	}
	return u.Scheme + "://" + u.Host, nil
}

// newRequestID returns a random version 4 UUID.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

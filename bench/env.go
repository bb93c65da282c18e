package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
)

// env is what every scenario of one run shares: the load driver, an admin
// client for setup and cluster views, and the name prefix of everything it
// provisions.
type env struct {
	opts   Options
	d      *driver
	admin  *client.Client
	prefix string
	target string
	log    io.Writer
	// product is created on first use and shared by the run's scenarios.
	product string
}

func newEnv(opts Options) (*env, error) {
	admin, err := client.New(client.Config{Addrs: opts.Addrs, Token: opts.Token, RetryFor: 20 * time.Second})
	if err != nil {
		return nil, err
	}
	var rnd [2]byte
	_, _ = rand.Read(rnd[:])
	e := &env{
		opts:   opts,
		admin:  admin,
		prefix: "bench-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(rnd[:]),
		log:    opts.Log,
	}
	if e.log == nil {
		e.log = io.Discard
	}
	e.target = strings.Join(admin.Addrs(), ",")
	if opts.Local != nil {
		e.target = fmt.Sprintf("a local %d-node cluster (%s)", len(opts.Local.nodes), e.target)
	}
	e.d = newDriver(max(opts.Clients, 64)+16, opts.Token, orDefault(opts.Timeout, 10*time.Second))
	return e, nil
}

func (e *env) close() { e.d.close() }

func (e *env) logf(format string, args ...any) { fmt.Fprintf(e.log, "bench: "+format+"\n", args...) }

// targets are the base URLs workers send to: every address, or the one
// node that --node names.
func (e *env) targets(ctx context.Context, node string) ([]string, error) {
	addrs := e.admin.Addrs()
	switch node {
	case "":
		return addrs, nil
	case "leader":
		st, err := e.admin.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("find the leader: %w", err)
		}
		if st.Leader.HTTPAddr == "" {
			return nil, fmt.Errorf("find the leader: %s knows none", st.NodeID)
		}
		u := withScheme(addrs[0], st.Leader.HTTPAddr)
		e.logf("load goes to the leader %s (%s)", st.Leader.ID, u)
		return []string{u}, nil
	case "follower":
		return e.follower(ctx)
	}
	c, err := client.New(client.Config{Addrs: []string{node}})
	if err != nil {
		return nil, fmt.Errorf("--node: %w", err)
	}
	return c.Addrs(), nil
}

// follower finds a node that says it follows, among the given addresses
// and every member gossip knows.
func (e *env) follower(ctx context.Context) ([]string, error) {
	addrs := e.admin.Addrs()
	cands := append([]string(nil), addrs...)
	if ms, err := e.admin.Members(ctx); err == nil {
		for _, m := range ms.Members {
			if m.Status == "alive" && m.HTTPAddr != "" {
				cands = append(cands, withScheme(addrs[0], m.HTTPAddr))
			}
		}
	}
	for _, a := range cands {
		st, err := e.admin.Node(a).Status(ctx)
		if err == nil && st.State == "follower" {
			e.logf("load goes to the follower %s (%s)", st.NodeID, a)
			return []string{a}, nil
		}
	}
	return nil, fmt.Errorf("no follower found among %s", strings.Join(cands, ", "))
}

// withScheme gives a host:port the scheme of like.
func withScheme(like, hostport string) string {
	if u, err := url.Parse(like); err == nil && u.Scheme != "" {
		return u.Scheme + "://" + hostport
	}
	return "http://" + hostport
}

// fixture is what one scenario provisioned: a policy with one counted
// feature and its licenses.
type fixture struct {
	policy   *api.Policy
	licenses []*api.License
}

// benchFeature is the one feature every bench policy grants.
const benchFeature = "bench"

// provision creates a policy named prefix-name with feature benchFeature
// (seats of it; 0 means uncounted) and n licenses on it.
func (e *env) provision(ctx context.Context, name string, seats int, ttl time.Duration, n int) (*fixture, error) {
	if e.product == "" {
		p, err := e.admin.CreateProduct(ctx, api.CreateProductRequest{Name: e.prefix})
		if err != nil {
			return nil, fmt.Errorf("provision: create product: %w", err)
		}
		e.product = p.ID
		if e.opts.Local != nil {
			e.logf("provisioning on product %q", e.prefix)
		} else {
			e.logf("provisioning on product %q (every policy and license bench makes is named %s-*; the API has no delete, so they stay)", e.prefix, e.prefix)
		}
	}
	feat := api.Feature{Name: benchFeature}
	if seats > 0 {
		feat.Seats = &seats
	}
	pol, err := e.admin.CreatePolicy(ctx, api.CreatePolicyRequest{
		ProductID: e.product, Name: e.prefix + "-" + name, Features: []api.Feature{feat},
		LeaseTTLSeconds: int64(max(ttl/time.Second, 1)),
	})
	if err != nil {
		return nil, fmt.Errorf("provision: create policy: %w", err)
	}
	f := &fixture{policy: pol, licenses: make([]*api.License, n)}
	err = forEach(ctx, n, 16, func(ctx context.Context, i int) error {
		lic, err := e.admin.CreateLicense(ctx, api.CreateLicenseRequest{PolicyID: pol.ID, Customer: fmt.Sprintf("%s-%s-%d", e.prefix, name, i)})
		f.licenses[i] = lic
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("provision: create license: %w", err)
	}
	return f, nil
}

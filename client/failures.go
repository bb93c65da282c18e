package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/tallyhq/tally/api"
)

// nodeFailures keeps the latest error of every node a call tried, so that
// when every node fails the caller learns what each said, not only the
// last one tried: with quorum lost, one node's no_leader says more than
// the connection refused of the two that are down.
type nodeFailures struct {
	addrs []string         // in the order first tried
	last  map[string]error // latest error per address
	// answer is the latest error a node sent (an *api.Error), if any.
	answer error
}

func (f *nodeFailures) add(addr string, err error) {
	if f.last == nil {
		f.last = map[string]error{}
	}
	if _, ok := f.last[addr]; !ok {
		f.addrs = append(f.addrs, addr)
	}
	f.last[addr] = err
	var ae *api.Error
	if errors.As(err, &ae) {
		f.answer = err
	}
}

// summary is the error of a call that gave up: last itself when at most
// one node was tried, else a *NodesError naming every node's failure.
func (f *nodeFailures) summary(started time.Time, last error) error {
	if len(f.addrs) <= 1 {
		if len(f.addrs) == 1 {
			return f.last[f.addrs[0]]
		}
		return last
	}
	e := &NodesError{Elapsed: time.Since(started)}
	for _, a := range f.addrs {
		e.Nodes = append(e.Nodes, NodeError{Addr: a, Err: f.last[a]})
	}
	e.primary = f.answer
	if e.primary == nil {
		e.primary = last
	}
	return e
}

// NodeError is the last failure of one node within a call.
type NodeError struct {
	Addr string // base URL, as Client.Addrs gives it
	Err  error
}

// NodesError is returned when every node a call tried failed. Its message
// lists each node's failure, grouped: "no node answered in 14.6s:
// 127.0.0.1:8501 no_leader: ...; 127.0.0.1:8502, 127.0.0.1:8503 connection
// refused". errors.Is and errors.As see the latest error a node sent (an
// *api.Error such as no_leader) first, then every node's error.
type NodesError struct {
	Nodes   []NodeError
	Elapsed time.Duration
	primary error
}

func (e *NodesError) Error() string {
	var groups []string
	addrs := map[string][]string{}
	for _, n := range e.Nodes {
		c := shortCause(n.Err)
		if _, ok := addrs[c]; !ok {
			groups = append(groups, c)
		}
		addrs[c] = append(addrs[c], displayAddr(n.Addr))
	}
	parts := make([]string, len(groups))
	for i, c := range groups {
		parts[i] = strings.Join(addrs[c], ", ") + " " + c
	}
	return fmt.Sprintf("tally client: no node answered in %s: %s",
		e.Elapsed.Round(100*time.Millisecond), strings.Join(parts, "; "))
}

// Unwrap gives the node-sent error first, so errors.As finds it.
func (e *NodesError) Unwrap() []error {
	out := []error{e.primary}
	for _, n := range e.Nodes {
		if n.Err != e.primary {
			out = append(out, n.Err)
		}
	}
	return out
}

// shortCause is one node's failure in a few words.
func shortCause(err error) string {
	var te *transportError
	if !errors.As(err, &te) {
		return err.Error()
	}
	var me *mismatchError
	if errors.As(te.err, &me) {
		return me.msg
	}
	if strings.HasPrefix(te.err.Error(), "request timed out") {
		return "request timed out"
	}
	var errno syscall.Errno
	if errors.As(te.err, &errno) {
		return errno.Error()
	}
	var de *net.DNSError
	if errors.As(te.err, &de) {
		return de.Error()
	}
	return te.err.Error()
}

// displayAddr drops the http:// that normalizeAddr added to host:port.
func displayAddr(base string) string { return strings.TrimPrefix(base, "http://") }

// mismatchError is a node that cannot speak what its address says.
type mismatchError struct {
	msg string // for people: what is wrong and what to do
	err error
}

func (e *mismatchError) Error() string { return e.msg + " (" + e.err.Error() + ")" }
func (e *mismatchError) Unwrap() error { return e.err }

// protocolMismatch recognises, cheaply, a node that cannot speak what its
// address says: nil for any other error.
func protocolMismatch(err error) *mismatchError {
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.Is(err, http.ErrSchemeMismatch):
		return &mismatchError{"the node speaks plain HTTP, not HTTPS: give its address as host:port or http://host:port", err}
	case errors.As(err, &rh):
		return &mismatchError{"the node did not answer the TLS handshake: is it serving HTTPS?", err}
	case errors.As(err, &cv):
		return &mismatchError{"the node's TLS certificate is not trusted", err}
	}
	return nil
}

// isProtocolMismatch reports whether err is one protocolMismatch found.
func isProtocolMismatch(err error) bool {
	var me *mismatchError
	return errors.As(err, &me)
}

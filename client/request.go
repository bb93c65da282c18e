package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/api"
)

// Backoff between attempts: 50 ms doubling, capped at 1 s, with jitter.
const (
	backoffBase = 50 * time.Millisecond
	backoffMax  = time.Second
)

// call is one API request, described once and sent by the one request loop.
type call struct {
	method string
	path   string
	query  url.Values
	body   any // JSON-encoded once; nil sends no body
	out    any // decoded from a 2xx answer; nil discards it
	// repeatable marks requests that are safe to send twice (reads,
	// checkout with its request_id, heartbeat, checkin): they retry on any
	// transport error. Other requests retry only when the node provably did
	// not process them (the dial failed, or it answered 503).
	repeatable bool
	// stream, when set, receives a 2xx body as is (snapshots).
	stream io.Writer
	// upload, when set, is sent as the body instead of a JSON one.
	upload *upload
	// budget overrides the client's RetryFor when positive.
	budget time.Duration
}

// do sends cl, failing over across the client's addresses until it gets an
// answer, the retry budget is spent, or ctx ends. It is the only place that
// retries.
func (c *Client) do(ctx context.Context, cl call) error {
	if c.err != nil {
		return c.err
	}
	var payload []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fmt.Errorf("tally client: encode %s %s: %w", cl.method, cl.path, err)
		}
		payload = b
	}
	budget := c.retryFor
	if cl.budget > 0 {
		budget = cl.budget
	}
	started := time.Now()
	deadline := started.Add(budget)
	n := len(c.addrs)
	i := int(c.preferred.Load()) % n
	notBefore := make([]time.Time, n) // from Retry-After, per address
	unusable := make([]bool, n)       // spoke the wrong protocol: not asked again
	var fails nodeFailures
	for attempt := 0; ; attempt++ {
		err := c.attempt(ctx, c.addrs[i], cl, payload)
		if err == nil {
			c.preferred.Store(int32(i))
			return nil
		}
		if ctx.Err() != nil {
			return ctxError(ctx, fails.summary(started, err))
		}
		fails.add(c.addrs[i], err)
		retry, after := c.retryable(cl, err)
		if !retry || budget < 0 {
			return err
		}
		if after > 0 {
			notBefore[i] = time.Now().Add(after)
		}
		if isProtocolMismatch(err) {
			unusable[i] = true
		}
		next, ok := nextUsable(i, unusable)
		if !ok {
			return fails.summary(started, err)
		}
		wait := backoff(attempt)
		if w := time.Until(notBefore[next]); w > wait {
			wait = w
		}
		if time.Now().Add(wait).After(deadline) {
			return fails.summary(started, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctxError(ctx, fails.summary(started, err))
		case <-t.C:
		}
		i = next
	}
}

// nextUsable is the address after i, in order and wrapping around, that is
// not marked unusable; i itself when it is the only one left.
func nextUsable(i int, unusable []bool) (int, bool) {
	n := len(unusable)
	for k := 1; k <= n; k++ {
		if j := (i + k) % n; !unusable[j] {
			return j, true
		}
	}
	return 0, false
}

// ctxError reports that the caller's context ended, keeping the last error
// seen so both errors.Is(err, context.DeadlineExceeded) and
// errors.Is(err, api.ErrNoLeader) can match.
func ctxError(ctx context.Context, last error) error {
	if last == nil || errors.Is(last, ctx.Err()) {
		return ctx.Err()
	}
	return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
}

// backoff is the jittered wait after the given attempt: 50 ms doubling up to
// 1 s, then a random point in its upper half.
func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 5 {
		d = min(backoffBase<<attempt, backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// transportError is a failure to get an answer from a node.
type transportError struct {
	addr string
	err  error
	// notSent is true when the request provably never reached the node.
	notSent bool
	// wroteOutput is true when part of a streamed body was already written.
	wroteOutput bool
}

func (e *transportError) Error() string { return "tally client: " + e.addr + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// retryable says whether err may be retried for cl and how long the node
// asked us to wait.
func (c *Client) retryable(cl call, err error) (bool, time.Duration) {
	var ae *api.Error
	if errors.As(err, &ae) {
		if api.StatusOf(ae.Code) != http.StatusServiceUnavailable {
			return false, 0
		}
		// A 503 timeout may come after the write was proposed: only
		// repeatable requests retry it.
		if ae.Code == api.CodeTimeout && !cl.repeatable {
			return false, 0
		}
		return true, time.Duration(ae.RetryAfter) * time.Second
	}
	var te *transportError
	if errors.As(err, &te) {
		if te.wroteOutput {
			return false, 0
		}
		return te.notSent || cl.repeatable, 0
	}
	return false, 0
}

// attempt sends cl to one node once.
func (c *Client) attempt(ctx context.Context, base string, cl call, payload []byte) error {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(c.requestTimeout, cancel)
	defer timer.Stop()

	u := base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	if cl.upload != nil {
		body = cl.upload.reader()
		// An upload and what the server does with it may take longer
		// than one request timeout; ctx still bounds it.
		timer.Stop()
	}
	req, err := http.NewRequestWithContext(actx, cl.method, u, body)
	if err != nil {
		return fmt.Errorf("tally client: %w", err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.upload != nil {
		req.ContentLength = cl.upload.size
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if cl.stream == nil {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", "tally-go-client/1")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if me := protocolMismatch(err); me != nil {
			// The TLS handshake failed: nothing was sent, and asking this
			// node again cannot help.
			return &transportError{addr: base, err: me, notSent: true}
		}
		return &transportError{addr: base, err: timeoutCause(actx, ctx, err), notSent: isDialError(err)}
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if cl.stream != nil {
		timer.Stop() // a snapshot may take longer than one request timeout
		cw := &countingWriter{w: cl.stream}
		if _, err := io.Copy(cw, resp.Body); err != nil {
			return &transportError{addr: base, err: timeoutCause(actx, ctx, err), wroteOutput: cw.n > 0}
		}
		return nil
	}
	if cl.out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		err = json.NewDecoder(resp.Body).Decode(cl.out)
	}
	if err != nil {
		var se *json.SyntaxError
		var ue *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &ue) {
			return fmt.Errorf("tally client: %s %s: bad answer: %w", cl.method, cl.path, err)
		}
		return &transportError{addr: base, err: timeoutCause(actx, ctx, err)}
	}
	return nil
}

// timeoutCause names a per-attempt timeout as such instead of "context
// canceled".
func timeoutCause(actx, ctx context.Context, err error) error {
	if ctx.Err() == nil && actx.Err() != nil {
		return fmt.Errorf("request timed out: %w", err)
	}
	return err
}

// isDialError reports whether err happened before the request was sent:
// refused or unreachable connection, DNS failure.
func isDialError(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	var de *net.DNSError
	return errors.As(err, &de)
}

// decodeError turns a non-2xx answer into *api.Error.
func decodeError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var er api.ErrorResponse
	e := &api.Error{}
	if json.Unmarshal(raw, &er) == nil && er.Error.Code != "" {
		*e = er.Error
	} else {
		e.Code = codeOfStatus(resp.StatusCode)
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		e.Message = fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if msg != "" {
			e.Message += ": " + msg
		}
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			e.RetryAfter = s
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(0, int(time.Until(t).Round(time.Second)/time.Second))
		}
	}
	return e
}

// codeOfStatus picks a code for an answer without a JSON error body (a
// proxy in between, say).
func codeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return api.CodeInvalidRequest
	case http.StatusUnauthorized:
		return api.CodeUnauthorized
	case http.StatusNotFound:
		return api.CodeNotFound
	case http.StatusMethodNotAllowed:
		return api.CodeMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		return api.CodeTooLarge
	case http.StatusTooManyRequests:
		return api.CodeRateLimited
	case http.StatusServiceUnavailable:
		return api.CodeNoLeader
	}
	return api.CodeInternal
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}

// upload is a request body read from a file: each attempt sends it from the
// start, reporting the bytes sent so far to progress.
type upload struct {
	src      io.ReaderAt
	size     int64
	progress func(sent int64)
}

func (u *upload) reader() io.Reader {
	return &progressReader{r: io.NewSectionReader(u.src, 0, u.size), progress: u.progress}
}

type progressReader struct {
	r        io.Reader
	sent     int64
	progress func(sent int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if p.progress != nil && n > 0 {
		p.progress(p.sent)
	}
	return n, err
}

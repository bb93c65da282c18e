package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Codes the driver counts for requests that got no API answer. API error
// codes (no_seats_available, no_leader, ...) are counted as the server
// names them.
const (
	codeClientTimeout = "client_timeout"     // no answer within --timeout
	codeRefused       = "connection_refused" // nothing listens (a killed node)
	codeConnection    = "connection_error"   // any other transport failure
	codeBadAnswer     = "bad_answer"         // a 2xx without the field we need
	// codeCanceled marks a request cut off because the scenario ended; it
	// is not counted at all.
	codeCanceled = "canceled"
)

// driver sends every measured request of a run through one fasthttp
// client, so connections are kept alive and reused across workers.
//
// Why not net/http: the load generator shares the machine with the
// cluster it measures, and every microsecond it spends is taken from the
// nodes. With net/http a `validate` run against one follower spent as much
// CPU in bench as in the follower (0.90 and 0.85 of a core); fasthttp's
// client reuses its request and response objects and needs no goroutines
// per connection. It speaks plain HTTP/1.1 with keep-alive, one request at
// a time per connection, like any client: what the nodes see is the same.
// A request is bounded by --timeout (or the context's deadline); cancelling
// the context does not cut one short, so a scenario that stops waits for
// its requests in flight, and counts their answers.
type driver struct {
	fc      *fasthttp.Client
	token   string
	timeout time.Duration
}

func newDriver(conns int, token string, timeout time.Duration) *driver {
	fc := &fasthttp.Client{
		MaxConnsPerHost:               conns,
		MaxConnWaitTimeout:            timeout, // wait for a free connection rather than fail
		MaxIdleConnDuration:           90 * time.Second,
		ReadTimeout:                   timeout,
		WriteTimeout:                  timeout,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		RetryIfErr:                    retryClosedConn,
	}
	return &driver{fc: fc, token: token, timeout: timeout}
}

func (d *driver) close() { d.fc.CloseIdleConnections() }

// wbuf is one worker's reusable buffers: the request body it builds and
// the answer it reads, so a steady worker allocates little per request.
type wbuf struct {
	req  []byte
	resp []byte
}

// send makes one request and returns "" for a 2xx answer, else its error
// code; the answer's body is left in b.resp. admin adds the bearer token.
func (d *driver) send(ctx context.Context, method, url string, body []byte, admin bool, b *wbuf) string {
	if ctx.Err() != nil {
		return codeCanceled
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod(method)
	if body != nil {
		req.Header.SetContentTypeBytes(jsonType)
		req.SetBodyRaw(body)
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	deadline := time.Now().Add(d.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := d.fc.DoDeadline(req, resp, deadline); err != nil {
		return transportCode(ctx, err)
	}
	b.resp = append(b.resp[:0], resp.Body()...)
	status := resp.StatusCode()
	if status >= 200 && status <= 299 {
		return ""
	}
	if code := jsonString(b.resp, "code"); code != "" {
		return code
	}
	return "http_" + strconv.Itoa(status)
}

var jsonType = []byte("application/json")

// retryClosedConn sends a request once more when the server closed the
// kept-alive connection it went out on, as net/http does. Only requests
// without the admin token qualify: a checkout carries its request id, a
// heartbeat, checkin or validate can be repeated; a create cannot.
func retryClosedConn(req *fasthttp.Request, attempts int, err error) (bool, bool) {
	closed := errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF)
	return false, closed && attempts < 2 && len(req.Header.Peek("Authorization")) == 0
}

// transportCode names a failure to get an answer.
func transportCode(ctx context.Context, err error) string {
	switch {
	case ctx.Err() != nil:
		return codeCanceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return codeRefused
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrNoFreeConns):
		return codeClientTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return codeClientTimeout
	}
	return codeConnection
}

// jsonString returns the first string value of "key" in a compact JSON
// document, or "" if there is none. The server writes compact JSON whose
// field order follows its Go structs (the lease's id comes first in a
// checkout answer), so a scan finds what a full decode would, at a
// fraction of the cost. Values with escapes are not needed here and come
// back as written.
func jsonString(doc []byte, key string) string {
	var pat [64]byte
	p := append(append(append(pat[:0], '"'), key...), `":"`...)
	i := bytes.Index(doc, p)
	if i < 0 {
		return ""
	}
	rest := doc[i+len(p):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// jsonHasTrue reports whether doc holds "key":true.
func jsonHasTrue(doc []byte, key string) bool {
	var pat [64]byte
	p := append(append(append(pat[:0], '"'), key...), `":true`...)
	return bytes.Contains(doc, p)
}

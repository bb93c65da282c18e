package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
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

// driver sends every measured request of a run through a few shared
// http.Clients, so connections are kept alive and reused across workers.
// One http.Transport guards its idle connections with one mutex; at 64
// workers that lock, in the load generator, becomes a bottleneck of its
// own (a mutex profile of the in-process heartbeat benchmark put 90% of
// its lock waits there). Workers are spread over driverShards transports.
type driver struct {
	hcs   []*http.Client
	next  atomic.Uint32
	token string
}

const driverShards = 16

func newDriver(conns int, token string, timeout time.Duration) *driver {
	d := &driver{token: token}
	for range driverShards {
		tr := &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   conns,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
			ResponseHeaderTimeout: timeout,
		}
		d.hcs = append(d.hcs, &http.Client{Transport: tr, Timeout: timeout})
	}
	return d
}

func (d *driver) close() {
	for _, hc := range d.hcs {
		hc.CloseIdleConnections()
	}
}

// wbuf is one worker's reusable buffers: the request body it builds and
// the answer it reads, so a steady worker allocates little per request,
// and the client it was given on its first request.
type wbuf struct {
	req  []byte
	resp []byte
	rd   bytes.Reader
	hc   *http.Client
}

// send makes one request and returns "" for a 2xx answer, else its error
// code; the answer's body is left in b.resp. admin adds the bearer token.
func (d *driver) send(ctx context.Context, method, url string, body []byte, admin bool, b *wbuf) string {
	var rd io.Reader
	if body != nil {
		b.rd.Reset(body)
		rd = &b.rd
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return codeConnection
	}
	if body != nil {
		req.Header["Content-Type"] = jsonContentType
	}
	if admin {
		req.Header["Authorization"] = []string{"Bearer " + d.token}
	}
	if b.hc == nil {
		b.hc = d.hcs[d.next.Add(1)%driverShards]
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return transportCode(ctx, err)
	}
	b.resp, err = readInto(b.resp[:0], resp.Body)
	resp.Body.Close()
	if err != nil {
		return transportCode(ctx, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return ""
	}
	if code := jsonString(b.resp, "code"); code != "" {
		return code
	}
	return "http_" + strconv.Itoa(resp.StatusCode)
}

var jsonContentType = []string{"application/json"}

// readInto appends all of r to buf.
func readInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// transportCode names a failure to get an answer.
func transportCode(ctx context.Context, err error) string {
	switch {
	case ctx.Err() != nil:
		return codeCanceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return codeRefused
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
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

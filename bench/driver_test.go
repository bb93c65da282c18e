package bench

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// send names every way a request can fail as the report counts it.
func TestSendNamesFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(400)
				return
			}
			w.Write([]byte(`{"id":"x"}`))
		case "/coded":
			w.WriteHeader(409)
			w.Write([]byte(`{"error":{"code":"no_seats_available","message":"full"}}`))
		case "/bare":
			w.WriteHeader(503)
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		}
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	d := newDriver(4, "tok", 100*time.Millisecond)
	defer d.close()
	ctx := context.Background()
	var b wbuf
	if code := d.send(ctx, http.MethodPost, srv.URL+"/ok", []byte(`{}`), true, &b); code != "" || string(b.resp) != `{"id":"x"}` {
		t.Errorf("ok: code %q, body %q", code, b.resp)
	}
	for _, c := range []struct{ url, want string }{
		{srv.URL + "/coded", "no_seats_available"},
		{srv.URL + "/bare", "http_503"},
		{srv.URL + "/slow", codeClientTimeout},
		{closed + "/ok", codeRefused},
	} {
		if code := d.send(ctx, http.MethodGet, c.url, nil, false, &b); code != c.want {
			t.Errorf("%s: code %q, want %q", c.url, code, c.want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if code := d.send(cancelled, http.MethodGet, srv.URL+"/ok", nil, false, &b); code != codeCanceled {
		t.Errorf("cancelled: code %q, want %q", code, codeCanceled)
	}
}

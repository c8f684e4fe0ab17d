package ui

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"strconv"

	"bakery.dev/bakery/api/client"
)

// inProcess is an http.RoundTripper that serves requests with the API
// handler in this process: the UI uses the API's own client and handlers,
// so it shares their validation, apply, diff and actions.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := &recorder{header: http.Header{}}
	if req.URL.Scheme == "https" {
		// The browser came over TLS: handlers that build URLs see it.
		req = req.Clone(req.Context())
		req.TLS = &tls.ConnectionState{}
	}
	t.h.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(rec.code) + " " + http.StatusText(rec.code),
		StatusCode:    rec.code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}

// recorder is an in-memory http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// client returns an API client that calls the API in-process. Its calls
// must get r's context, which names the user (see authed). Its base URL is the URL the
// browser used, so that bootstrap commands name the server as the browser
// reaches it.
func (u *UI) client(r *http.Request) *client.Client {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	hc := &http.Client{Transport: inProcess{u.cfg.API}}
	c, err := client.New(scheme+"://"+r.Host, "", client.WithHTTPClient(hc), client.WithUserAgent("bakery-ui"))
	if err != nil {
		// r.Host came through net/http's checks; fall back to a fixed host.
		c, _ = client.New("http://bakery.invalid", "", client.WithHTTPClient(hc), client.WithUserAgent("bakery-ui"))
	}
	return c
}

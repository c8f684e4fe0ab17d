package nodescript

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/sshexec"
)

// TestHealthFailureSays runs health with the real curl against local
// servers that fail in different ways: the error names the URL, the
// attempts and the last answer or connection error.
func TestHealthFailureSays(t *testing.T) {
	serve := func(h http.HandlerFunc) int {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		p, _ := strconv.Atoi(u.Port())
		return p
	}
	status500 := serve(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", http.StatusInternalServerError) })
	ok := serve(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	hangup := serve(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	})
	slow := serve(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()

	for _, tc := range []struct {
		name    string
		port    int
		retries int
		want    string // "" = passes
	}{
		{"HTTP 500", status500, 3, "failed after 3 attempts: last answer HTTP 500"},
		{"refused", closed, 2, "failed after 2 attempts: connection refused"},
		{"hung up", hangup, 1, "failed after 1 attempt: the connection closed without an answer"},
		{"too slow", slow, 1, "failed after 1 attempt: no answer within 0.300s"},
		{"204", ok, 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := Health.Command(HealthInput{Port: tc.port, Path: "/healthz", Timeout: 300 * time.Millisecond, Interval: 10 * time.Millisecond, Retries: tc.retries})
			if err != nil {
				t.Fatal(err)
			}
			res, err := runLocal(t, cmd, t.TempDir())
			herr := HealthFailure(res, err)
			if tc.want == "" {
				if err != nil || herr != nil || !strings.Contains(string(res.Stdout), "answered HTTP 204") {
					t.Fatalf("err %v, %v; stdout %q, stderr %q", err, herr, res.Stdout, res.Stderr)
				}
				return
			}
			want := fmt.Sprintf("health check http://127.0.0.1:%d/healthz %s", tc.port, tc.want)
			if herr == nil || herr.Error() != want {
				t.Fatalf("error %v, want %q\nstderr: %s", herr, want, res.Stderr)
			}
			if !errors.Is(herr, err) {
				t.Errorf("%v does not wrap the script's error %v", herr, err)
			}
		})
	}
	// No verdict (the script did not run to its end): no HealthError.
	if e := HealthFailure(sshexec.Result{Stderr: []byte("bakery: health check 1/3 failed: x\n")}, errors.New("connection lost")); e != nil {
		t.Errorf("got %v", e)
	}
}

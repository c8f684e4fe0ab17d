//go:build e2e

package manager

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/scripts/testnodes"
)

const (
	wsApp  = "wsapp"
	wsHost = "ws.example.test"
)

// wsRepo makes a git repository holding testdata/wsapp with REV "v1"; the
// function returned commits another REV.
func wsRepo(t *testing.T) (string, func(rev string) string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), wsApp)
	if err := os.CopyFS(dir, os.DirFS("testdata/wsapp")); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.test", "-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	commit := func(rev string) string {
		if err := os.WriteFile(filepath.Join(dir, "REV"), []byte(rev+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", ".")
		git("commit", "-q", "-m", rev)
		return git("rev-parse", "HEAD")
	}
	return dir, commit
}

// request sends one request through the node's nginx for host.
func request(c *http.Client, ip, method, host, path string, body io.Reader) (*http.Response, []byte, error) {
	req, _ := http.NewRequest(method, "http://"+net.JoinHostPort(ip, "80")+path, body)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// wsConn is a minimal WebSocket client (text frames only).
type wsConn struct {
	c net.Conn
	r *bufio.Reader
}

func wsDial(ip, host string) (*wsConn, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "80"), 5*time.Second)
	if err != nil {
		return nil, err
	}
	k := make([]byte, 16)
	rand.Read(k)
	key := base64.StdEncoding.EncodeToString(k)
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", host, key)
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		c.Close()
		return nil, fmt.Errorf("websocket handshake: %s %v", resp.Status, resp.Header)
	}
	return &wsConn{c: c, r: r}, nil
}

// echo sends msg and returns the answer.
func (w *wsConn) echo(msg string) (string, error) {
	mask := []byte{1, 2, 3, 4}
	p := []byte(msg)
	frame := append([]byte{0x81, 0x80 | byte(len(p))}, mask...)
	for i := range p {
		frame = append(frame, p[i]^mask[i%4])
	}
	w.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := w.c.Write(frame); err != nil {
		return "", err
	}
	h := make([]byte, 2)
	if _, err := io.ReadFull(w.r, h); err != nil {
		return "", err
	}
	if h[0]&0x0f == 8 {
		return "", io.EOF
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		l := make([]byte, 2)
		if _, err := io.ReadFull(w.r, l); err != nil {
			return "", err
		}
		n = int(l[0])<<8 | int(l[1])
	}
	b := make([]byte, n)
	_, err := io.ReadFull(w.r, b)
	return string(b), err
}

// TestE2EIngress runs an app holding WebSockets and event streams behind
// nginx on a real node (systemd runtime): proxy settings, a redirect,
// custom headers, uploads up to clientMaxBodySize, server-sent events
// unbuffered, a WebSocket opened before a switch kept until the drain
// ends while new ones reach the new revision, and maintenance mode on and
// off under continuous requests.
func TestE2EIngress(t *testing.T) {
	lab := testnodes.Require(t)
	node := testnodes.RequireNodes(t, 1)[0]
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	nn := labNode(node.Name, node.Address)
	nn.Spec.HostKey = node.HostKey
	if _, err := st.Create(ctx, nn); err != nil {
		t.Fatal(err)
	}
	clean := `h=/usr/local/lib/bakery/bakery-sudo
for s in blue green; do sudo -n $h systemctl stop ` + wsApp + ` $s; sudo -n $h unit-remove ` + wsApp + ` $s; done
sudo -n $h nginx-site-remove ` + wsApp + `; sudo -n $h app-remove ` + wsApp + `; rm -rf /var/lib/bakery/apps/` + wsApp + `
sudo -n $h daemon-reload; sudo -n $h nginx-reload; true`
	testnodes.SSH(t, node, clean)
	// Leave the shared node as it was (other tests list what is there).
	t.Cleanup(func() { testnodes.SSH(t, node, clean) })
	key, err := os.ReadFile(lab.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := New(Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mctx, mcancel := context.WithCancel(ctx)
	mdone := make(chan struct{})
	go func() { defer close(mdone); mgr.Run(mctx) }()
	t.Cleanup(func() { mcancel(); <-mdone })

	repo, commit := wsRepo(t)
	c1 := commit("v1")
	off := false
	const drain = 8 * time.Second
	d := &api.Deployment{
		TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment},
		Metadata: api.ObjectMeta{Name: wsApp},
		Spec: api.DeploymentSpec{
			Source:      api.Source{Repo: repo, Ref: "main"},
			Nodes:       []string{node.Name},
			Run:         api.Run{Command: "node server.js"},
			HealthCheck: api.HealthCheck{Path: "/healthz", Interval: &api.Duration{Duration: 100 * time.Millisecond}, Retries: 50},
			Ingress: &api.Ingress{Hosts: []string{wsHost},
				Proxy: &api.Proxy{Buffering: &off, ClientMaxBodySize: "20m", ReadTimeout: &api.Duration{Duration: time.Hour},
					Headers: map[string]string{"X-Frame-Options": "DENY", "X-Test-Note": "it's 'fine' (#1) <ok> & ~done~"}},
				Redirects: []api.Redirect{{From: "www." + wsHost, To: wsHost}}},
			Strategy: api.Strategy{Drain: &api.Duration{Duration: drain}},
		},
	}
	d.Default()
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	getWS := func() *api.Deployment {
		o, err := st.Get(ctx, api.KindDeployment, wsApp)
		if err != nil {
			t.Fatal(err)
		}
		return o.(*api.Deployment)
	}
	waitWS := func(what string, cond func(*api.Deployment) bool) *api.Deployment {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			d := getWS()
			if cond(d) {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s; status %+v", what, d.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitWS("v1 Ready", readyAt(c1))
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ip := node.Address

	// Custom headers and the redirect.
	resp, body, err := request(hc, ip, "GET", wsHost, "/", nil)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(string(body), "v1 ") {
		t.Fatalf("GET /: %v %v %q", resp, err, body)
	}
	if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options %q", got)
	}
	if got, want := resp.Header.Get("X-Test-Note"), "it's 'fine' (#1) <ok> & ~done~"; got != want {
		t.Errorf("X-Test-Note %q, want %q", got, want)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS on plain HTTP")
	}
	resp, _, err = request(hc, ip, "GET", "www."+wsHost, "/a/b?c=d", nil)
	if err != nil || resp.StatusCode != 301 || resp.Header.Get("Location") != "http://"+wsHost+"/a/b?c=d" {
		t.Fatalf("redirect: %v %v", resp, err)
	}
	t.Logf("headers served; www.%s → 301 %s", wsHost, resp.Header.Get("Location"))

	// Uploads: 10 MB passes, 21 MB gets 413 (clientMaxBodySize 20m).
	resp, body, err = request(hc, ip, "POST", wsHost, "/upload", bytes.NewReader(make([]byte, 10<<20)))
	if err != nil || resp.StatusCode != 200 || strings.TrimSpace(string(body)) != fmt.Sprint(10<<20) {
		t.Fatalf("10 MB upload: %v %v %q", resp, err, body)
	}
	resp, _, err = request(hc, ip, "POST", wsHost, "/upload", bytes.NewReader(make([]byte, 21<<20)))
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("21 MB upload: %v, want 413", resp.Status)
	}
	t.Logf("upload of 10 MiB: 200 with the full length at the app; 21 MiB: %v %v", func() any {
		if resp != nil {
			return resp.StatusCode
		}
		return nil
	}(), err)

	// Server-sent events arrive one by one (sent 400 ms apart): with
	// nginx's buffering, all would come at once at the end.
	req, _ := http.NewRequest("GET", "http://"+net.JoinHostPort(ip, "80")+"/sse", nil)
	req.Host = wsHost
	sresp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var arrivals []time.Time
	var delays []time.Duration // arrival − the app's send time (the node shares the host's clock)
	sc := bufio.NewScanner(sresp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			now := time.Now()
			arrivals = append(arrivals, now)
			var i, ms int64
			if _, err := fmt.Sscan(rest, &i, &ms); err == nil {
				delays = append(delays, now.Sub(time.UnixMilli(ms)).Round(time.Millisecond))
			}
		}
	}
	sresp.Body.Close()
	if len(arrivals) != 5 {
		t.Fatalf("%d events, want 5", len(arrivals))
	}
	var gaps []time.Duration
	for i := 1; i < len(arrivals); i++ {
		gaps = append(gaps, arrivals[i].Sub(arrivals[i-1]).Round(time.Millisecond))
	}
	t.Logf("SSE: events arrived %v apart (sent 400ms apart), each %v after the app wrote it", gaps, delays)
	if spread := arrivals[4].Sub(arrivals[0]); spread < 800*time.Millisecond {
		t.Fatalf("events arrived within %v: buffered", spread)
	}

	// A WebSocket opened before the switch keeps working until the drain
	// ends; new ones reach v2.
	old, err := wsDial(ip, wsHost)
	if err != nil {
		t.Fatal(err)
	}
	defer old.c.Close()
	if got, err := old.echo("before"); err != nil || got != "v1:before" {
		t.Fatalf("echo before the switch: %q %v", got, err)
	}
	c2 := commit("v2")
	var switched, lastOld, closed time.Time
	var afterSwitch int
	for i := 0; ; i++ {
		got, err := old.echo(fmt.Sprint("m", i))
		now := time.Now()
		if err != nil {
			closed = now
			break
		}
		if got != fmt.Sprint("v1:m", i) {
			t.Fatalf("old connection answered %q", got)
		}
		lastOld = now
		if switched.IsZero() {
			if _, b, err := request(hc, ip, "GET", wsHost, "/", nil); err == nil && strings.HasPrefix(string(b), "v2 ") {
				switched = time.Now()
				nw, err := wsDial(ip, wsHost)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := nw.echo("new"); err != nil || got != "v2:new" {
					t.Fatalf("new connection after the switch: %q %v", got, err)
				}
				nw.c.Close()
			}
		} else {
			afterSwitch++
		}
		if !switched.IsZero() && time.Since(switched) > drain+time.Minute {
			t.Fatalf("the old connection is still open %v after the switch (drain %v)", time.Since(switched), drain)
		}
		if switched.IsZero() && i > 3000 {
			t.Fatal("no switch to v2")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if switched.IsZero() {
		t.Fatalf("the old connection closed (%v) before nginx served v2", closed)
	}
	t.Logf("WebSocket opened on v1: %d echoes after the switch, last %v after it, closed %v after it (drain %v); a new connection reached v2",
		afterSwitch, lastOld.Sub(switched).Round(time.Millisecond), closed.Sub(switched).Round(time.Millisecond), drain)
	if lastOld.Sub(switched) < drain/2 {
		t.Errorf("the old connection ended %v after the switch, before the drain (%v)", lastOld.Sub(switched), drain)
	}
	waitWS("v2 Ready", readyAt(c2))

	// Roll back to v1 first: maintenance (the action bakery maintenance
	// uses) must keep the rollback's pin, not roll v2 out again.
	if _, err := mgr.DeploymentAction(ctx, wsApp, api.ActionRequest{Action: api.ActionRollback, By: "test"}); err != nil {
		t.Fatal(err)
	}
	waitWS("rolled back to v1", func(d *api.Deployment) bool { return readyAt(c1)(d) && d.Status.Pin != nil })
	maintenanceUnderLoad(t, wsApp, wsHost, ip, actionMaintenance(t, mgr, wsApp))
	time.Sleep(2 * time.Second) // a few resyncs (500 ms)
	if d := getWS(); d.Status.Pin == nil || d.Status.Pin.Generation != d.Metadata.Generation || d.Status.Commit != c1 {
		t.Fatalf("after maintenance on and off: pin %+v at generation %d, commit %s (want %s, pinned)", d.Status.Pin, d.Metadata.Generation, d.Status.Commit, c1)
	}
	if _, b, err := request(hc, ip, "GET", wsHost, "/", nil); err != nil || !strings.HasPrefix(string(b), "v1 ") {
		t.Fatalf("after maintenance: %q %v, want v1 still", b, err)
	}
	t.Logf("the rollback's pin held across maintenance on and off: v1 still served")
}

// maintenanceMessage is the message maintenanceUnderLoad sets.
const maintenanceMessage = "Back soon (test)."

// specMaintenance sets spec.ingress.maintenance with a store update.
func specMaintenance(t *testing.T, st deployment.Store, app string) func(on bool) {
	return func(on bool) {
		t.Helper()
		o, err := st.Get(t.Context(), api.KindDeployment, app)
		if err != nil {
			t.Fatal(err)
		}
		cur := o.(*api.Deployment)
		cur.Spec.Ingress.Maintenance = nil
		if on {
			cur.Spec.Ingress.Maintenance = &api.Maintenance{Enabled: true, Message: maintenanceMessage}
		}
		if _, err := st.Update(t.Context(), cur); err != nil {
			t.Fatal(err)
		}
	}
}

// actionMaintenance sets it as bakery maintenance on|off does: the
// maintenance action, through the manager.
func actionMaintenance(t *testing.T, mgr *Manager, app string) func(on bool) {
	return func(on bool) {
		t.Helper()
		m := &api.Maintenance{Enabled: on}
		if on {
			m.Message = maintenanceMessage
		}
		if _, err := mgr.DeploymentAction(t.Context(), app, api.ActionRequest{Action: api.ActionMaintenance, Maintenance: m, By: "test"}); err != nil {
			t.Fatal(err)
		}
	}
}

// maintenanceUnderLoad turns maintenance on and off under continuous
// requests for host through the node's nginx: while on, only 503 with
// Retry-After and the message; once off, no failed request; the slot is
// not restarted (the same answer before and after: the app's pid or
// version).
func maintenanceUnderLoad(t *testing.T, app, host, ip string, setMaintenance func(on bool)) {
	hc := &http.Client{Timeout: 10 * time.Second}
	_, before, _ := request(hc, ip, "GET", host, "/", nil)
	var phase atomic.Int32 // 0 before on, 1 maintenance seen, 2 asked off, 3 service seen again
	var ok, maint, bad atomic.Int64
	var badMsg atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, b, err := request(c, ip, "GET", host, "/", nil)
			p := phase.Load()
			switch {
			case err != nil:
				bad.Add(1)
				badMsg.Store(err.Error())
			case resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "60" && string(b) == maintenanceMessage+"\n":
				maint.Add(1)
				if p == 0 {
					phase.CompareAndSwap(0, 1)
				} else if p == 3 {
					bad.Add(1)
					badMsg.Store("503 after service came back")
				}
			case resp.StatusCode == 200:
				ok.Add(1)
				if p == 1 {
					bad.Add(1)
					badMsg.Store("200 while in maintenance")
				} else if p == 2 {
					phase.CompareAndSwap(2, 3)
				}
			default:
				bad.Add(1)
				badMsg.Store(fmt.Sprintf("%s %v %q", resp.Status, resp.Header, b))
			}
		}
	}()
	waitPhase := func(p int32) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for phase.Load() < p {
			if time.Now().After(deadline) {
				t.Fatalf("phase %d not reached (ok %d, 503 %d, bad %d %v)", p, ok.Load(), maint.Load(), bad.Load(), badMsg.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(time.Second)
	setMaintenance(true)
	waitPhase(1)
	okOn := ok.Load()
	time.Sleep(2 * time.Second)
	phase.Store(2)
	setMaintenance(false)
	waitPhase(3)
	maintOff := maint.Load()
	time.Sleep(2 * time.Second)
	close(stop)
	<-done
	t.Logf("maintenance: %d requests ok before it, %d answered 503 + Retry-After + the message, %d ok after it, %d failed",
		okOn, maintOff, ok.Load()-okOn, bad.Load())
	if bad.Load() > 0 {
		t.Fatalf("%d requests failed or were answered wrongly: %v", bad.Load(), badMsg.Load())
	}
	if _, after, _ := request(hc, ip, "GET", host, "/", nil); string(after) != string(before) {
		t.Fatalf("the slot changed: %q before maintenance, %q after", before, after)
	}
}

// The docker app of TestE2EIngressDocker (not TestE2EDocker's dhello:
// tests share the nodes).
const (
	dsiteApp  = "dsite"
	dsiteHost = "dsite.example.test"
)

// dockerSSEStart is the docker example's entry point with an event stream:
// busybox httpd runs /cgi-bin/sse, which writes 4 events 1 s apart.
const dockerSSEStart = `#!/bin/sh
set -e
printf '%s from %s\n' "${GREETING:-hello}" "$(cat /VERSION)" >/www/index.html
mkdir -p /www/cgi-bin
cat >/www/cgi-bin/sse <<'SSE'
#!/bin/sh
printf 'Content-Type: text/event-stream\r\n\r\n'
for i in 0 1 2 3; do printf 'data: %s\n\n' "$i"; [ "$i" = 3 ] || sleep 1; done
SSE
chmod 755 /www/cgi-bin/sse
exec httpd -f -v -p "$PORT" -h /www
`

// TestE2EIngressDocker: the proxy settings, a redirect, an unbuffered
// event stream and maintenance under continuous requests for an app of the
// docker runtime (the image is busybox: no WebSocket server in it; nginx's
// site is the same for both runtimes, and TestE2EIngress covers WebSockets
// across a switch).
func TestE2EIngressDocker(t *testing.T) {
	lab := testnodes.Require(t)
	node := testnodes.RequireNodes(t, 1)[0]
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	nn := labNode(node.Name, node.Address)
	nn.Spec.HostKey = node.HostKey
	if _, err := st.Create(ctx, nn); err != nil {
		t.Fatal(err)
	}
	clean := `for s in blue green; do docker rm -f bakery-` + dsiteApp + `-$s; done >/dev/null 2>&1
imgs=$(docker image ls -q bakery/` + dsiteApp + `); [ -z "$imgs" ] || docker image rm -f $imgs >/dev/null
h=/usr/local/lib/bakery/bakery-sudo; sudo -n $h nginx-site-remove ` + dsiteApp + `; sudo -n $h nginx-reload
sudo -n $h app-remove ` + dsiteApp + `; rm -rf /var/lib/bakery/apps/` + dsiteApp + `; true`
	testnodes.SSH(t, node, clean)
	t.Cleanup(func() { testnodes.SSH(t, node, clean) })
	key, err := os.ReadFile(lab.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := New(Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mctx, mcancel := context.WithCancel(ctx)
	mdone := make(chan struct{})
	go func() { defer close(mdone); mgr.Run(mctx) }()
	t.Cleanup(func() { mcancel(); <-mdone })

	repo, commit := exampleRepo(t)
	c1 := commit("sse", map[string]string{"docker-start.sh": dockerSSEStart})
	d := dockerDeployment(repo, node.Name)
	d.Metadata.Name, d.Spec.Ingress.Hosts = dsiteApp, []string{dsiteHost}
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		o, err := st.Get(ctx, api.KindDeployment, dsiteApp)
		if err != nil {
			t.Fatal(err)
		}
		if readyAt(c1)(o.(*api.Deployment)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not Ready: %+v", o.(*api.Deployment).Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ip := node.Address
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	sse := func() []time.Duration {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+net.JoinHostPort(ip, "80")+"/cgi-bin/sse", nil)
		req.Host = dsiteHost
		sresp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer sresp.Body.Close()
		var arrivals []time.Time
		sc := bufio.NewScanner(sresp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				arrivals = append(arrivals, time.Now())
			}
		}
		if len(arrivals) != 4 {
			t.Fatalf("%d events, want 4 (%s)", len(arrivals), sresp.Status)
		}
		var gaps []time.Duration
		for i := 1; i < len(arrivals); i++ {
			gaps = append(gaps, arrivals[i].Sub(arrivals[i-1]).Round(time.Millisecond))
		}
		return gaps
	}
	// nginx's default (buffering on), for comparison: logged, not asserted.
	t.Logf("docker SSE with nginx's buffering (the default): events arrived %v apart (written 1s apart)", sse())

	o, err := st.Get(ctx, api.KindDeployment, dsiteApp)
	if err != nil {
		t.Fatal(err)
	}
	d = o.(*api.Deployment)
	off := false
	d.Spec.Ingress.Proxy = &api.Proxy{Buffering: &off, Headers: map[string]string{"X-Content-Type-Options": "nosniff"}}
	d.Spec.Ingress.Redirects = []api.Redirect{{From: "www." + dsiteHost, To: dsiteHost}}
	if _, err := st.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	var body []byte
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		resp, body, err = request(hc, ip, "GET", dsiteHost, "/", nil)
		if err == nil && resp.StatusCode == 200 && resp.Header.Get("X-Content-Type-Options") == "nosniff" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new site is not served: %v %v %q", resp, err, body)
		}
	}
	resp, _, err = request(hc, ip, "GET", "www."+dsiteHost, "/x", nil)
	if err != nil || resp.StatusCode != 301 || resp.Header.Get("Location") != "http://"+dsiteHost+"/x" {
		t.Fatalf("redirect: %v %v", resp, err)
	}
	gaps := sse()
	t.Logf("docker SSE with buffering false: events arrived %v apart (written 1s apart)", gaps)
	if spread := gaps[0] + gaps[1] + gaps[2]; spread < 1500*time.Millisecond {
		t.Fatalf("events arrived within %v: buffered", spread)
	}
	maintenanceUnderLoad(t, dsiteApp, dsiteHost, ip, specMaintenance(t, st, dsiteApp))
}

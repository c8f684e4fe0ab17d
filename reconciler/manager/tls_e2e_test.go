//go:build e2e

package manager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/scripts/testnodes"
)

// pebble is a running Pebble (scripts/pebble.sh) on the lab's bridge.
type pebble struct {
	lab  *testnodes.Lab
	root *x509.CertPool // Pebble's issuing root of this start
}

const pebbleACME = "https://pebble:14000/dir"

func pebbleScript(t *testing.T, lab *testnodes.Lab, args ...string) string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"../../scripts/pebble.sh"}, args...)...)
	cmd.Env = append(os.Environ(), "BAKERY_TESTNODES="+lab.StateDir)
	if lab.Script != "" {
		// pebble.sh trust runs the lab's testnodes.sh.
		cmd.Env = append(cmd.Env, "BAKERY_TESTNODES_SCRIPT="+lab.Script)
	}
	// A daemon the script leaves holding the output pipe must not hang
	// the test: give up reading 10 s after the script itself exited.
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pebble.sh %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// startPebble starts Pebble and challtestsrv (installed from the Go module
// proxy), makes nodes trust its API and resolve "pebble", and points every
// host of hosts at node's address.
func startPebble(t *testing.T, lab *testnodes.Lab, node testnodes.Node, hosts ...string) *pebble {
	t.Helper()
	t0 := time.Now()
	pebbleScript(t, lab, "up")
	t.Cleanup(func() { pebbleScript(t, lab, "down") })
	pebbleScript(t, lab, "trust", node.Name)
	for _, h := range hosts {
		pebbleScript(t, lab, "add-a", h, node.Address)
	}
	pem, err := os.ReadFile(filepath.Join(lab.StateDir, "pebble", "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("Pebble's issuing root is not PEM: %q", pem)
	}
	t.Logf("Pebble up, node %s trusts it: %v", node.Name, time.Since(t0).Round(time.Millisecond))
	return &pebble{lab: lab, root: pool}
}

// httpsClient sends every request for any host to ip (as curl --resolve
// does) and verifies the server against Pebble's issuing root only.
func (p *pebble) httpsClient(ip string, keepAlive bool) *http.Client {
	d := &net.Dialer{Timeout: 3 * time.Second}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return d.DialContext(ctx, network, net.JoinHostPort(ip, port))
			},
			TLSClientConfig:   &tls.Config{RootCAs: p.root},
			DisableKeepAlives: !keepAlive,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// servedSerial returns the serial (hex) of the certificate the node serves
// for host, verified against Pebble's root.
func (p *pebble) servedSerial(ip, host string) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", net.JoinHostPort(ip, "443"), &tls.Config{RootCAs: p.root, ServerName: host})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

func sameSerial(a, b string) bool {
	return strings.EqualFold(strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0"))
}

func getURL(c *http.Client, url string) (int, http.Header, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, strings.TrimSpace(string(b)), nil
}

func getNamed(t *testing.T, st deployment.Store, name string) *api.Deployment {
	t.Helper()
	o, err := st.Get(t.Context(), api.KindDeployment, name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.Deployment)
}

func waitNamed(t *testing.T, st deployment.Store, name, what string, timeout time.Duration, cond func(d *api.Deployment) bool) *api.Deployment {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := getNamed(t, st, name)
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s; status %+v", what, d.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func condStatus(d *api.Deployment, typ string) (api.ConditionStatus, string) {
	for _, c := range d.Status.Conditions {
		if c.Type == typ {
			return c.Status, c.Reason
		}
	}
	return "", ""
}

// runManager runs a Manager until the returned stop function is called.
func runManager(t *testing.T, cfg Config) (*Manager, func()) {
	t.Helper()
	mgr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); mgr.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return mgr, stop
}

// rolloutLogText returns the text of every log line of every rollout of
// deployment name.
func rolloutLogText(t *testing.T, st deployment.Store, name string) string {
	t.Helper()
	ros, err := st.ListRollouts(t.Context(), name, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, ro := range ros {
		lines, err := st.Logs(t.Context(), ro.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			b.WriteString(l.Text + "\n")
		}
	}
	return b.String()
}

// TestE2ETLS: real certbot on a test node gets certificates from Pebble
// over HTTP-01 through the node's nginx; the app is served over HTTPS that
// verifies against Pebble's issuing root, HTTP redirects there, a renewal
// is served after a reload with no failed request, a failed renewal raises
// CertificateRenewalFailed, and a host that cannot be validated leaves its
// app serving HTTP, Degraded, with certbot's output in the rollout log.
func TestE2ETLS(t *testing.T) {
	lab := testnodes.Require(t)
	node := testnodes.RequireNodes(t, 1)[0]
	ctx := t.Context()
	hosts := []string{"secure.example.test", "www.secure.example.test"}
	const badHost = "nodns.example.test" // challtestsrv does not know it

	// Leftovers of earlier runs: the apps, and certbot's state (Pebble
	// forgets its accounts on restart).
	testnodes.SSH(t, node, `h=/usr/local/lib/bakery/bakery-sudo
for a in secure broken; do
  for s in blue green; do sudo -n $h systemctl disable $a $s; sudo -n $h systemctl stop $a $s; sudo -n $h unit-remove $a $s; done
  sudo -n $h nginx-site-remove $a; rm -rf /var/lib/bakery/apps/$a
done
sudo -n $h daemon-reload; sudo -n $h nginx-reload`)
	if out, err := testnodes.Exec(t, node.Name, "rm -rf /etc/letsencrypt /var/lib/letsencrypt"); err != nil {
		t.Fatalf("clearing certbot's state: %v\n%s", err, out)
	}
	p := startPebble(t, lab, node, hosts...)

	st := testenv.FileStore(t).(deployment.Store)
	nn := labNode(node.Name, node.Address)
	nn.Spec.HostKey = node.HostKey
	if _, err := st.Create(ctx, nn); err != nil {
		t.Fatal(err)
	}
	key := labKey(t, lab)
	cfg := Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute, ACMEServer: pebbleACME, CertRetry: time.Hour}
	mgr, stop := runManager(t, cfg)

	repo, commit := exampleRepo(t)
	c1 := commit("v1", map[string]string{"CHANGES": "v1\n"})
	secure := helloDeployment(repo, node.Name)
	secure.Metadata.Name = "secure"
	secure.Spec.Ingress = &api.Ingress{Hosts: hosts, TLS: &api.TLS{Email: "ops@example.test", HSTS: true}}
	broken := helloDeployment(repo, node.Name)
	broken.Metadata.Name = "broken"
	broken.Spec.Ingress = &api.Ingress{Hosts: []string{badHost}, TLS: &api.TLS{Email: "ops@example.test"}}
	start := time.Now()
	if _, err := st.Create(ctx, secure); err != nil {
		t.Fatal(err)
	}

	got := waitNamed(t, st, "secure", "the TLS deployment is Ready", 3*time.Minute, func(d *api.Deployment) bool {
		if s, _ := condStatus(d, api.ConditionDegraded); s == api.ConditionTrue {
			t.Fatalf("rollout failed: %+v\nrollout log:\n%s", d.Status.Conditions, rolloutLogText(t, st, "secure"))
		}
		return readyAt(c1)(d)
	})
	t.Logf("fresh TLS deployment Ready (build, start, switch, %d certificates): %v", len(hosts), time.Since(start).Round(time.Millisecond))
	if ro, err := st.GetRollout(ctx, got.Status.CurrentRollout.ID); err == nil {
		for _, n := range ro.Nodes {
			for _, s := range n.Steps {
				if strings.HasPrefix(s.Name, "certificate ") || strings.HasPrefix(s.Name, "site ") {
					t.Logf("step %q: %d ms", s.Name, s.DurationMillis)
				}
			}
		}
	}
	for _, l := range strings.Split(rolloutLogText(t, st, "secure"), "\n") {
		if strings.Contains(l, " issued in ") {
			t.Logf("issuance: %s", l)
		}
	}
	if len(got.Status.Nodes) != 1 || len(got.Status.Nodes[0].Certificates) != len(hosts) {
		t.Fatalf("status has no certificates per host: %+v", got.Status.Nodes)
	}
	serials := map[string]string{}
	for i, c := range got.Status.Nodes[0].Certificates {
		if c.Host != hosts[i] || c.NotAfter == nil || c.Serial == "" {
			t.Fatalf("certificate status %d: %+v", i, c)
		}
		if left := time.Until(c.NotAfter.Time); left < 80*24*time.Hour || left > 91*24*time.Hour {
			t.Errorf("%s: certificate expires in %v, want Pebble's 90 days", c.Host, left)
		}
		serials[c.Host] = c.Serial
	}

	// Converged with TLS: still one SSH round trip per reconcile (the
	// certificates' expiry comes with the rest of the observation), and
	// nothing written.
	rv := got.Metadata.ResourceVersion
	solo := countingConnector{Connector: nodeconn.SSHConnector{Pool: labPool(t, lab)}, runs: map[string]*atomic.Int64{node.Name: {}}}
	rec := &deployment.Reconciler{Store: st, Connector: solo, Mirrors: mgr.deps.Mirrors, ACMEServer: pebbleACME}
	for i := range 3 {
		t0 := time.Now()
		if _, err := rec.Reconcile(ctx, reconciler.Request{Kind: api.KindDeployment, Name: "secure"}); err != nil {
			t.Fatal(err)
		}
		t.Logf("no-op reconcile %d of the TLS deployment: %v", i+1, time.Since(t0).Round(time.Millisecond))
	}
	if n := solo.runs[node.Name].Load(); n != 3 {
		t.Errorf("%d commands for 3 converged reconciles of a TLS deployment, want 3", n)
	}
	if now := getNamed(t, st, "secure").Metadata.ResourceVersion; now != rv {
		t.Errorf("a converged reconcile wrote the deployment (rv %s → %s)", rv, now)
	}

	// HTTPS verifies against Pebble's issuing root and reaches the app.
	hc := p.httpsClient(node.Address, false)
	for _, h := range hosts {
		code, hdr, body, err := getURL(hc, "https://"+h+"/")
		if err != nil || code != 200 || !strings.HasPrefix(body, "hello from "+c1[:12]) {
			t.Fatalf("https://%s/: %d %q %v", h, code, body, err)
		}
		if hdr.Get("X-Bakery-Slot") != "secure/blue" {
			t.Errorf("https://%s/ answered from %q", h, hdr.Get("X-Bakery-Slot"))
		}
		if got := hdr.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("https://%s/: Strict-Transport-Security %q (tls.hsts is on)", h, got)
		}
		serial, err := p.servedSerial(node.Address, h)
		if err != nil || !sameSerial(serial, serials[h]) {
			t.Fatalf("%s: served certificate serial %s (%v), status says %s", h, serial, err, serials[h])
		}
		// Plain HTTP redirects to HTTPS, except ACME challenges.
		code, hdr, _, err = getURL(hc, "http://"+h+"/some/path?q=1")
		if err != nil || code != http.StatusMovedPermanently || hdr.Get("Location") != "https://"+h+"/some/path?q=1" {
			t.Fatalf("http://%s/some/path?q=1: %d Location %q %v; want a 301 to https", h, code, hdr.Get("Location"), err)
		}
		if got := hdr.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("http://%s/: Strict-Transport-Security %q over plain HTTP", h, got)
		}
		code, hdr, _, err = getURL(hc, "http://"+h+"/.well-known/acme-challenge/none")
		if err != nil || code != http.StatusNotFound || hdr.Get("X-Bakery-Acme") != "1" {
			t.Fatalf("challenge path over http: %d %v %v; want 404 from the challenge location", code, hdr, err)
		}
	}
	// A verifying client refuses a host the certificate is not for.
	if _, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", net.JoinHostPort(node.Address, "443"),
		&tls.Config{RootCAs: p.root, ServerName: "other.example.test"}); err == nil {
		t.Error("a certificate for other.example.test verified")
	}

	// Issuance that cannot be validated: HTTP keeps serving, Degraded,
	// certbot's own words in the rollout log. (Created only now so that
	// the issuance times above are not shared with its certbot run.)
	if _, err := st.Create(ctx, broken); err != nil {
		t.Fatal(err)
	}
	b := waitNamed(t, st, "broken", "the undeliverable certificate fails", 3*time.Minute, func(d *api.Deployment) bool {
		s, r := condStatus(d, api.ConditionDegraded)
		return s == api.ConditionTrue && r == deployment.ReasonCertificateFailed
	})
	if s, _ := condStatus(b, api.ConditionReady); s != api.ConditionFalse {
		t.Errorf("broken: Ready %s, want False while HTTPS is not served", s)
	}
	if b.Status.FailedAttempt != nil {
		t.Errorf("broken: a certificate failure recorded a FailedAttempt (%+v): it would never be retried", b.Status.FailedAttempt)
	}
	logText := rolloutLogText(t, st, "broken")
	if !strings.Contains(logText, "Certbot failed to authenticate") && !strings.Contains(logText, "DNS problem") {
		t.Fatalf("broken: certbot's output is not in the rollout log:\n%s", logText)
	}
	for _, l := range strings.Split(logText, "\n") {
		if strings.Contains(l, "Detail:") || strings.Contains(l, "DNS problem") {
			t.Logf("certbot on the failed issuance: %s", strings.TrimSpace(l))
			break
		}
	}
	req, _ := http.NewRequest("GET", "http://"+node.Address+"/", nil)
	req.Host = badHost
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Bakery-Slot") != "broken/blue" {
		t.Fatalf("broken: the HTTP site does not serve: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Renewal: a control plane whose threshold is beyond Pebble's 90 days
	// renews at once; continuous HTTPS requests see no failure, and the
	// new certificate is served after the reload.
	stop()
	ld := startHTTPSLoad(p, node.Address, hosts[0])
	cfg.CertRenewBefore = 91 * 24 * time.Hour
	t0 := time.Now()
	_, stop2 := runManager(t, cfg)
	var renewed string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s, err := p.servedSerial(node.Address, hosts[0])
		if err == nil && !sameSerial(s, serials[hosts[0]]) {
			renewed = s
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no renewed certificate served within 2 minutes (last: %s, %v)", s, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("renewal (control plane start, observe, certbot renew, nginx -t, reload) served after %v", time.Since(t0).Round(time.Millisecond))
	waitNamed(t, st, "secure", "status shows the renewed certificate", time.Minute, func(d *api.Deployment) bool {
		return len(d.Status.Nodes) == 1 && len(d.Status.Nodes[0].Certificates) > 0 && !sameSerial(d.Status.Nodes[0].Certificates[0].Serial, serials[hosts[0]])
	})
	stop2()
	ld.check(t, "certificate renewal")
	t.Logf("renewed certificate of %s: serial %s", hosts[0], renewed)

	// A renewal that fails (the host no longer resolves for the ACME
	// server): CertificateRenewalFailed as a condition and an event;
	// HTTPS keeps being served with the current certificate.
	pebbleScript(t, lab, "clear-a", hosts[0])
	_, stop3 := runManager(t, cfg)
	d := waitNamed(t, st, "secure", "a failed renewal is reported", 2*time.Minute, func(d *api.Deployment) bool {
		s, r := condStatus(d, api.ConditionDegraded)
		return s == api.ConditionTrue && r == deployment.ReasonCertificateRenewalFailed
	})
	stop3()
	if s, _ := condStatus(d, api.ConditionReady); s != api.ConditionTrue {
		t.Errorf("Ready %s after a failed renewal; the current certificate still serves", s)
	}
	evs, err := st.(store.Events).ListEvents(ctx, "Deployment/secure", 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		if e.Type == api.EventCertificateRenewalFailed && strings.Contains(e.Message, hosts[0]) {
			found = true
			t.Logf("event %s (%s): %.200s", e.Type, e.Severity, e.Message)
		}
	}
	if !found {
		t.Fatalf("no CertificateRenewalFailed event among %d events", len(evs))
	}
	if code, _, _, err := getURL(hc, "https://"+hosts[0]+"/"); err != nil || code != 200 {
		t.Fatalf("HTTPS after a failed renewal: %d %v", code, err)
	}
}

type httpsLoad struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	ok, fail atomic.Int64
	mu       sync.Mutex
	errs     []error
}

// startHTTPSLoad sends HTTPS requests for host to ip without pause, on
// kept-alive connections and on fresh ones (which see a new certificate).
func startHTTPSLoad(p *pebble, ip, host string) *httpsLoad {
	l := &httpsLoad{stop: make(chan struct{})}
	for _, keep := range []bool{true, false} {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := p.httpsClient(ip, keep)
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				code, _, body, err := getURL(c, "https://"+host+"/")
				if err == nil && (code != 200 || !strings.HasPrefix(body, "hello from ")) {
					err = fmt.Errorf("status %d: %q", code, body)
				}
				if err != nil {
					l.fail.Add(1)
					l.mu.Lock()
					if len(l.errs) < 10 {
						l.errs = append(l.errs, err)
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *httpsLoad) check(t *testing.T, what string) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	t.Logf("HTTPS during %s: %d requests ok, %d failed", what, l.ok.Load(), l.fail.Load())
	if l.fail.Load() > 0 || l.ok.Load() == 0 {
		t.Fatalf("%d HTTPS requests failed during %s: %v", l.fail.Load(), what, errors.Join(l.errs...))
	}
}

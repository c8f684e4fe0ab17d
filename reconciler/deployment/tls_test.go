package deployment

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/internal/events/eventstest"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/sshexec"
)

func TestPlanCertificates(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	tlsDesired := func(commit string) Desired {
		d := desired()
		d.Commit = commit
		d.TLSHosts = []string{"a.example.test", "b.example.test"}
		d.RenewBefore = 30 * 24 * time.Hour
		d.Now = now
		return d
	}
	valid := nodescript.Cert{NotAfter: now.Add(60 * 24 * time.Hour), Serial: "AA"}
	expiring := nodescript.Cert{NotAfter: now.Add(10 * 24 * time.Hour), Serial: "BB"}
	rel2 := nf.ReleaseID(c2, "build1")
	tests := []struct {
		name string
		d    Desired
		obs  func() nodescript.Observed
		want []Action
	}{
		{"converged, certificates valid", tlsDesired(c1), func() nodescript.Observed {
			o := serving(c1, "spec2")
			o.Certs = map[string]nodescript.Cert{"a.example.test": valid, "b.example.test": valid}
			return o
		}, nil},
		{"certificate missing: obtain it, then serve HTTPS", tlsDesired(c1), func() nodescript.Observed {
			o := serving(c1, "spec2")
			o.SiteHash = "http-only"
			o.Certs = map[string]nodescript.Cert{"a.example.test": valid}
			return o
		}, []Action{
			{Type: ActCert, Host: "b.example.test", Reason: "no certificate yet"},
			{Type: ActSite, Slot: nf.Blue, Port: 20000, Reason: "serve HTTPS with the new certificates"},
		}},
		{"certificate due: renew it (the renew step reloads)", tlsDesired(c1), func() nodescript.Observed {
			o := serving(c1, "spec2")
			o.Certs = map[string]nodescript.Cert{"a.example.test": expiring, "b.example.test": valid}
			return o
		}, []Action{{Type: ActRenew, Host: "a.example.test", Reason: "expires 2026-12-07T00:00:00Z"}}},
		{"active unit down and a certificate due: restart first", tlsDesired(c1), func() nodescript.Observed {
			o := serving(c1, "spec2")
			o.Units[nf.Blue] = "failed"
			o.Certs = map[string]nodescript.Cert{"a.example.test": valid, "b.example.test": expiring}
			return o
		}, []Action{
			{Type: ActStart, Slot: nf.Blue, Commit: c1, Port: 20000, Reason: "active unit is failed"},
			{Type: ActHealth, Slot: nf.Blue, Port: 20000},
			{Type: ActRenew, Host: "b.example.test", Reason: "expires 2026-12-07T00:00:00Z"},
		}},
		{"fresh node: certificates after the switch, then HTTPS", tlsDesired(c2), func() nodescript.Observed {
			return nodescript.Observed{Units: map[string]string{}, UsedPorts: map[int]bool{}}
		}, []Action{
			{Type: ActFetch, Commit: c2},
			{Type: ActBuild, Commit: c2, Release: rel2},
			{Type: ActInstall, Slot: nf.Blue, Commit: c2, Release: rel2, Port: 20000},
			{Type: ActStart, Slot: nf.Blue, Commit: c2, Release: rel2, Port: 20000},
			{Type: ActHealth, Slot: nf.Blue, Port: 20000},
			{Type: ActSwitch, Slot: nf.Blue, Commit: c2, Release: rel2, Port: 20000},
			{Type: ActPrune},
			{Type: ActCert, Host: "a.example.test", Reason: "no certificate yet"},
			{Type: ActCert, Host: "b.example.test", Reason: "no certificate yet"},
			{Type: ActSite, Slot: nf.Blue, Port: 20000, Reason: "serve HTTPS with the new certificates"},
		}},
		{"new commit with certificates: nothing extra", tlsDesired(c2), func() nodescript.Observed {
			o := serving(c1, "spec2")
			o.Certs = map[string]nodescript.Cert{"a.example.test": valid, "b.example.test": valid}
			return o
		}, []Action{
			{Type: ActFetch, Commit: c2},
			{Type: ActBuild, Commit: c2, Release: rel2},
			{Type: ActInstall, Slot: nf.Green, Commit: c2, Release: rel2, Port: 20001},
			{Type: ActStart, Slot: nf.Green, Commit: c2, Release: rel2, Port: 20001},
			{Type: ActHealth, Slot: nf.Green, Port: 20001},
			{Type: ActSwitch, Slot: nf.Green, Commit: c2, Release: rel2, Port: 20001},
			{Type: ActDrain, Slot: nf.Blue},
			{Type: ActStop, Slot: nf.Blue, Reason: "replaced"},
			{Type: ActPrune},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Plan(tc.d, tc.obs())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeNodeTools puts sudo and curl on PATH that log their arguments (one
// per line, each command ended by "--") to the returned file and answer
// like the node's helper and nginx would; certbot-certonly and
// certbot-renew fail when certbotFails.
func fakeNodeTools(t *testing.T, certbotFails bool) string {
	dir := t.TempDir()
	logf := filepath.Join(dir, "argv.log")
	fail := ""
	if certbotFails {
		fail = "echo 'Certbot failed to authenticate some domains' >&2; exit 1"
	}
	sudo := `#!/bin/sh
for a in "$@"; do printf '%s\n' "$a" >> ` + logf + `; done
echo -- >> ` + logf + `
case $3 in
nginx-site-install) shift 3; printf '%s\n' "$@" > ` + filepath.Join(dir, "site") + `; echo changed ;;
certbot-certonly|certbot-renew) ` + fail + ` echo "Successfully received certificate." ;;
cert-info) echo "cert $4 1803533847 ABCDEF0$(wc -l < ` + logf + `)" ;;
esac
`
	curl := "#!/bin/sh\nprintf 'HTTP/1.1 404 Not Found\\r\\nX-Bakery-Acme: 1\\r\\n\\r\\n'\n"
	for name, content := range map[string]string{"sudo": sudo, "curl": curl} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return dir
}

func readArgv(t *testing.T, dir string) [][]string {
	b, err := os.ReadFile(filepath.Join(dir, "argv.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	var cur []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "--" {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	return out
}

func tlsRun(email string) (*nodeRun, *[]string) {
	var logs []string
	spec := &api.DeploymentSpec{Ingress: &api.Ingress{Hosts: []string{"a.example.test"}, TLS: &api.TLS{Email: email}},
		HealthCheck: api.HealthCheck{Path: "/"}}
	n := &nodeRun{node: "n1", app: "web", spec: spec, ex: sshexec.NewLocal(), timeout: time.Minute, acme: "https://pebble:14000/dir",
		log: func(_, text string) { logs = append(logs, text) }}
	n.obs.State = &nf.AppState{App: "web", Active: nf.Blue, Slots: map[string]nf.SlotState{nf.Blue: {Port: 20000}}}
	return n, &logs
}

// The certbot steps run the node's helper with every value as one
// argument, exactly as given: no value is evaluated by a shell, even one
// validation would have refused.
func TestCertificateCommands(t *testing.T) {
	dir := fakeNodeTools(t, false)
	hostile := `o'brien"+$(touch /tmp/pwned)@example.com`
	n, logs := tlsRun(hostile)
	if err := (nginxIngress{}).Certificate(t.Context(), n, "a.example.test"); err != nil {
		t.Fatalf("Certificate: %v\n%s", err, strings.Join(*logs, "\n"))
	}
	helper := []string{"-n", nf.SudoHelper}
	want := [][]string{
		append(helper, "nginx-site-install", "web", "blue", "20000", "--tls", "--host", "a.example.test"),
		append(helper, "nginx-reload"),
		append(helper, "certbot-certonly", "a.example.test", "--email", hostile, "--server", "https://pebble:14000/dir"),
		append(helper, "cert-info", "a.example.test"),
	}
	if diff := cmp.Diff(want, readArgv(t, dir)); diff != "" {
		t.Fatalf("helper calls (-want +got):\n%s", diff)
	}
	// The helper renders the site from its parameters: TLS, no
	// certificate yet (so the challenge over HTTP only).
	site, _ := os.ReadFile(filepath.Join(dir, "site"))
	if !strings.Contains(string(site), "--tls\n") || strings.Contains(string(site), "--cert") {
		t.Errorf("before issuance the site serves the challenge over HTTP only; site arguments:\n%s", site)
	}
	if c := n.obs.Certs["a.example.test"]; c.Serial == "" || c.NotAfter.Unix() != 1803533847 {
		t.Errorf("issued certificate not recorded: %+v", n.obs.Certs)
	}

	// Renewal: forced for the one lineage, then nginx -t and a reload.
	if err := os.Remove(filepath.Join(dir, "argv.log")); err != nil {
		t.Fatal(err)
	}
	if err := (nginxIngress{}).Renew(t.Context(), n, "a.example.test"); err != nil {
		t.Fatalf("Renew: %v\n%s", err, strings.Join(*logs, "\n"))
	}
	want = [][]string{
		append(helper, "certbot-renew", "a.example.test", "--server", "https://pebble:14000/dir", "--force"),
		append(helper, "nginx-test"),
		append(helper, "nginx-reload"),
		append(helper, "cert-info", "a.example.test"),
	}
	if diff := cmp.Diff(want, readArgv(t, dir)); diff != "" {
		t.Fatalf("renew calls (-want +got):\n%s", diff)
	}
}

func TestCertificateFailure(t *testing.T) {
	fakeNodeTools(t, true)
	n, logs := tlsRun("ops@example.com")
	err := (nginxIngress{}).Certificate(t.Context(), n, "a.example.test")
	var ce *certError
	if err == nil || !errors.As(err, &ce) || ce.renew || ce.host != "a.example.test" {
		t.Fatalf("err = %v, want a certError for the issuance", err)
	}
	if !strings.Contains(strings.Join(*logs, "\n"), "Certbot failed to authenticate") {
		t.Errorf("certbot's output is not in the step's log: %q", *logs)
	}
	if !strings.Contains(err.Error(), "Certbot failed to authenticate some domains") {
		t.Errorf("the error does not say what certbot said: %v", err)
	}
	n.obs.Certs = map[string]nodescript.Cert{"a.example.test": {NotAfter: time.Now().Add(time.Hour), Serial: "01"}}
	err = (nginxIngress{}).Renew(t.Context(), n, "a.example.test")
	if err == nil || !errors.As(err, &ce) || !ce.renew || ce.notAfter.IsZero() {
		t.Fatalf("err = %v, want a certError for the renewal", err)
	}
}

func TestACMEServerChoice(t *testing.T) {
	spec := &api.DeploymentSpec{Ingress: &api.Ingress{Hosts: []string{"a.example.test"}, TLS: &api.TLS{Email: "a@b.example"}}}
	r := &Reconciler{}
	if got := r.acmeServer(spec); got != DefaultACMEServer {
		t.Errorf("default: %s", got)
	}
	r.ACMEServer = ACMEStagingServer
	if got := r.acmeServer(spec); got != ACMEStagingServer {
		t.Errorf("control plane's: %s", got)
	}
	spec.Ingress.TLS.Server = "https://acme.internal/dir"
	if got := r.acmeServer(spec); got != "https://acme.internal/dir" {
		t.Errorf("the spec's own: %s", got)
	}
	for _, u := range []string{DefaultACMEServer, ACMEStagingServer} {
		if r := api.ValidateACMEServer(u); r != "" {
			t.Errorf("%s: %s", u, r)
		}
	}
}

func TestCertificateFailureEvents(t *testing.T) {
	failing := []api.Condition{{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: ReasonCertificateRenewalFailed}}
	month := &certError{host: "a.example.test", renew: true, notAfter: time.Now().Add(20 * 24 * time.Hour), err: errors.New("x")}
	days := &certError{host: "a.example.test", renew: true, notAfter: time.Now().Add(3 * 24 * time.Hour), err: errors.New("x")}
	issue := &certError{host: "a.example.test", err: errors.New("x")}
	for _, c := range []struct {
		name  string
		conds []api.Condition
		ce    *certError
		r     string
		want  bool
	}{
		{"first renewal failure", nil, month, ReasonCertificateRenewalFailed, false},
		{"renewal failing again, weeks left", failing, month, ReasonCertificateRenewalFailed, true},
		{"renewal failing again, days left", failing, days, ReasonCertificateRenewalFailed, false},
		{"issuance after a renewal failure", failing, issue, ReasonCertificateFailed, false},
		{"issuance failing again", []api.Condition{{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: ReasonCertificateFailed}}, issue, ReasonCertificateFailed, true},
		{"not a certificate failure", failing, nil, ReasonRolloutFailed, false},
	} {
		if got := repeatedCertFailure(c.conds, c.ce, c.r); got != c.want {
			t.Errorf("%s: repeated = %t, want %t", c.name, got, c.want)
		}
	}

	l := eventstest.New(t, nil)
	r := &Reconciler{Events: l.Rec}
	r.certificateRenewalFailedEvent(t.Context(), "web", "web-1", "web-2-abcd", month)
	if e := l.Last(); e.Type != api.EventCertificateRenewalFailed || e.Severity != api.SeverityWarning || !strings.Contains(e.Message, "node web-1: the certificate of a.example.test expires in") {
		t.Fatalf("event %+v", e)
	}
	r.certificateRenewalFailedEvent(t.Context(), "web", "web-1", "web-2-abcd", days)
	if e := l.Last(); e.Severity != api.SeverityError {
		t.Fatalf("within a week of expiry: %+v", e)
	}
}

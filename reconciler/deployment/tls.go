package deployment

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/sshexec"
)

// ACME directories.
const (
	// DefaultACMEServer is Let's Encrypt's production directory, used
	// when neither the spec nor the control plane names another.
	DefaultACMEServer = "https://acme-v02.api.letsencrypt.org/directory"
	// ACMEStagingServer is Let's Encrypt's staging directory (untrusted
	// certificates, generous rate limits) for `bakery server --acme-staging`.
	ACMEStagingServer = "https://acme-staging-v02.api.letsencrypt.org/directory"
	// DefaultRenewBefore is how long before expiry a certificate is
	// renewed (certbot's own default).
	DefaultRenewBefore = 30 * 24 * time.Hour
	// DefaultCertRetry is how long a failed certificate step waits before
	// it is tried again (ACME servers limit failed validations: Let's
	// Encrypt allows 5 per host and hour).
	DefaultCertRetry = 10 * time.Minute
)

// Reasons of a failed certificate step.
const (
	ReasonCertificateFailed        = "CertificateFailed"
	ReasonCertificateRenewalFailed = "CertificateRenewalFailed"
)

// certError is a failed certificate step: the app keeps serving (over
// HTTP for a certificate never issued, over HTTPS with the old one for a
// failed renewal), and the step is retried after CertRetry rather than
// waiting for a new revision.
type certError struct {
	host  string
	renew bool
	// notAfter is the expiry of the certificate a renewal failed for.
	notAfter time.Time
	err      error
}

func (e *certError) Error() string {
	if e.renew {
		return fmt.Sprintf("renewing the certificate of %s (expires %s): %v", e.host, e.notAfter.UTC().Format(time.RFC3339), e.err)
	}
	return fmt.Sprintf("obtaining a certificate for %s: %v", e.host, e.err)
}

func (e *certError) Unwrap() error { return e.err }

// certScript makes nginx serve the ACME challenge for the app's hosts (the
// site for the certificates there are, on stdin), waits until the reloaded
// nginx does, runs certbot and prints the new certificate's line.
const certScript = `r=$(` + sudo + ` nginx-site-install "$APP") || exit 1
if [ "$r" = changed ]; then ` + sudo + ` nginx-reload || exit 1; fi
i=0
until curl -s -o /dev/null -D - -m 2 -H "Host: $HOST" "http://127.0.0.1:80/.well-known/acme-challenge/bakery-probe" 2>/dev/null | tr -d '\r' | grep -qix "$HDR: 1"; do
  i=$((i + 1))
  if [ $i -ge 200 ]; then echo "bakery: nginx does not serve the ACME challenge location for $HOST within 10s" >&2; exit 1; fi
  sleep 0.05
done
echo "bakery: requesting a certificate for $HOST from $SERVER (HTTP-01)"
` + sudo + ` certbot-certonly "$HOST" --email "$EMAIL" --server "$SERVER" || exit 1
` + sudo + ` cert-info "$HOST"
`

// renewScript renews one lineage, reloads nginx after `nginx -t` and
// prints the new certificate's line. The renewal is forced: Bakery, not
// certbot's own window, decides when a certificate is due.
const renewScript = sudo + ` certbot-renew "$HOST" --server "$SERVER" --force || exit 1
` + sudo + ` nginx-test || exit 1
` + sudo + ` nginx-reload || exit 1
` + sudo + ` cert-info "$HOST"
`

func (n *nodeRun) certEnv(host string) map[string]string {
	email := ""
	if n.spec.Ingress != nil && n.spec.Ingress.TLS != nil {
		email = n.spec.Ingress.TLS.Email
	}
	return map[string]string{"APP": n.app, "HOST": host, "EMAIL": email, "SERVER": n.acme, "HDR": "X-Bakery-Acme"}
}

func (g nginxIngress) Certificate(ctx context.Context, n *nodeRun, host string) error {
	if n.obs.State == nil || n.obs.State.Active == "" {
		return &certError{host: host, err: errors.New("no active slot to serve the challenge from")}
	}
	slot := n.obs.State.Active
	site := g.site(n, slot, n.obs.State.Slots[slot].Port, false)
	t0 := time.Now()
	res, err := n.run(ctx, certScript, n.certEnv(host), []byte(site))
	if err != nil {
		return &certError{host: host, err: withCertbotDetail(err, res)}
	}
	c, err := findCert(string(res.Stdout), host)
	if err != nil {
		return &certError{host: host, err: err}
	}
	n.setCert(host, c)
	n.logf("certificate for %s issued in %s: serial %s, valid until %s", host, time.Since(t0).Round(time.Millisecond), c.Serial, c.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func (nginxIngress) Renew(ctx context.Context, n *nodeRun, host string) error {
	old := n.obs.Certs[host]
	t0 := time.Now()
	res, err := n.run(ctx, renewScript, n.certEnv(host), nil)
	if err != nil {
		return &certError{host: host, renew: true, notAfter: old.NotAfter, err: withCertbotDetail(err, res)}
	}
	c, err := findCert(string(res.Stdout), host)
	if err == nil && c.Serial == old.Serial {
		err = errors.New("certbot reported success but the certificate did not change")
	}
	if err != nil {
		return &certError{host: host, renew: true, notAfter: old.NotAfter, err: err}
	}
	n.setCert(host, c)
	n.logf("certificate for %s renewed in %s: serial %s, valid until %s; nginx reloaded", host, time.Since(t0).Round(time.Millisecond), c.Serial, c.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// withCertbotDetail adds what the ACME server said ("Detail: …" in
// certbot's output), else the last line of stderr, to a failed step's
// error; the whole output is in the rollout log.
func withCertbotDetail(err error, res sshexec.Result) error {
	detail := ""
	for _, l := range strings.Split(string(res.Stdout)+"\n"+string(res.Stderr), "\n") {
		if d, ok := strings.CutPrefix(strings.TrimSpace(l), "Detail:"); ok {
			detail = strings.TrimSpace(d)
			break
		}
	}
	if detail == "" {
		lines := strings.Split(strings.TrimSpace(string(res.Stderr)), "\n")
		for i := len(lines) - 1; i >= 0 && detail == ""; i-- {
			if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "Ask for help") {
				detail = l
			}
		}
	}
	if detail == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, truncate(detail, 300))
}

func (n *nodeRun) setCert(host string, c Cert) {
	if n.obs.Certs == nil {
		n.obs.Certs = map[string]Cert{}
	}
	n.obs.Certs[host] = c
}

// parseCertLine parses what the helper's cert-info prints after "cert ":
// "HOST NOTAFTER-UNIX SERIAL", or "HOST -" when there is no certificate.
func parseCertLine(rest string) (host string, c Cert, ok bool, err error) {
	f := strings.Fields(rest)
	switch {
	case len(f) == 2 && f[1] == "-":
		return f[0], Cert{}, false, nil
	case len(f) == 3:
		sec, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return "", Cert{}, false, fmt.Errorf("certificate line %q: %w", rest, err)
		}
		return f[0], Cert{NotAfter: time.Unix(sec, 0).UTC(), Serial: f[2]}, true, nil
	}
	return "", Cert{}, false, fmt.Errorf("unexpected certificate line %q", truncate(rest, 100))
}

// findCert finds host's certificate line in a step's output.
func findCert(out, host string) (Cert, error) {
	for _, l := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(l, "cert ")
		if !ok {
			continue
		}
		h, c, found, err := parseCertLine(rest)
		if err != nil || h != host {
			continue
		}
		if !found {
			return Cert{}, fmt.Errorf("certbot finished but there is no certificate for %s", host)
		}
		return c, nil
	}
	return Cert{}, fmt.Errorf("the node did not report the certificate of %s", host)
}

// tlsHosts are the hosts that need certificates.
func tlsHosts(s *api.DeploymentSpec) []string {
	if s.Ingress == nil || s.Ingress.TLS == nil {
		return nil
	}
	return s.Ingress.Hosts
}

// acmeServer is the ACME directory of a spec: its own, else the
// control plane's.
func (r *Reconciler) acmeServer(s *api.DeploymentSpec) string {
	if s.Ingress != nil && s.Ingress.TLS != nil && s.Ingress.TLS.Server != "" {
		return s.Ingress.TLS.Server
	}
	if r.ACMEServer != "" {
		return r.ACMEServer
	}
	return DefaultACMEServer
}

func (r *Reconciler) renewBefore() time.Duration {
	if r.RenewBefore > 0 {
		return r.RenewBefore
	}
	return DefaultRenewBefore
}

func (r *Reconciler) certRetry() time.Duration {
	if r.CertRetry > 0 {
		return r.CertRetry
	}
	return DefaultCertRetry
}

// certStatus lists a node's certificates for the spec's TLS hosts.
func certStatus(s *api.DeploymentSpec, certs map[string]Cert) []api.CertificateStatus {
	var out []api.CertificateStatus
	for _, h := range tlsHosts(s) {
		cs := api.CertificateStatus{Host: h}
		if c, ok := certs[h]; ok {
			cs.NotAfter = api.NewTime(c.NotAfter)
			cs.Serial = c.Serial
		}
		out = append(out, cs)
	}
	return out
}

// repeatedCertFailure reports whether a failed certificate step fails
// again the way the deployment's Degraded condition already says (a retry
// after CertRetry): such a retry raises no new events — except a renewal
// within a week of expiry, raised (as an error) on every failed attempt.
func repeatedCertFailure(conds []api.Condition, ce *certError, reason string) bool {
	c := api.FindCondition(conds, api.ConditionDegraded)
	if ce == nil || c == nil || c.Status != api.ConditionTrue || c.Reason != reason {
		return false
	}
	return !ce.renew || time.Until(ce.notAfter) >= 7*24*time.Hour
}

// certificateRenewalFailedEvent tells operators that a certificate due for
// renewal was not renewed; an error when it expires within a week.
func (r *Reconciler) certificateRenewalFailedEvent(ctx context.Context, name, node, rolloutID string, ce *certError) {
	left := time.Until(ce.notAfter)
	sev := api.SeverityWarning
	if left < 7*24*time.Hour {
		sev = api.SeverityError
	}
	r.Events.Record(ctx, &api.Event{Type: api.EventCertificateRenewalFailed, Severity: sev, Object: api.KindDeployment + "/" + name, Rollout: rolloutID,
		Message: fmt.Sprintf("node %s: the certificate of %s expires in %s (%s) and could not be renewed: %v", node, ce.host,
			left.Round(time.Minute), ce.notAfter.UTC().Format(time.RFC3339), ce.err)})
}

package deployment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/nodescript"
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

// certEmail is the ACME account's email of the spec.
func (n *nodeRun) certEmail() string {
	if n.spec.Ingress != nil && n.spec.Ingress.TLS != nil {
		return n.spec.Ingress.TLS.Email
	}
	return ""
}

func (g nginxIngress) Certificate(ctx context.Context, n *nodeRun, host string) error {
	if n.obs.State == nil || n.obs.State.Active == "" {
		return &certError{host: host, err: errors.New("no active slot to serve the challenge from")}
	}
	slot := n.obs.State.Active
	// The helper renders the site from these parameters (nodescript validates them).
	site := g.site(n, slot, n.obs.State.Slots[slot].Port, false)
	t0 := time.Now()
	res, err := run(ctx, n, nodescript.Certificate, nodescript.CertificateInput{App: n.app, Host: host, Email: n.certEmail(), Server: n.acme, Site: site})
	if err != nil {
		return &certError{host: host, err: nodescript.WithCertbotDetail(err, res)}
	}
	c, err := nodescript.FindCert(string(res.Stdout), host)
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
	res, err := run(ctx, n, nodescript.Renew, nodescript.RenewInput{Host: host, Server: n.acme})
	if err != nil {
		return &certError{host: host, renew: true, notAfter: old.NotAfter, err: nodescript.WithCertbotDetail(err, res)}
	}
	c, err := nodescript.FindCert(string(res.Stdout), host)
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

func (n *nodeRun) setCert(host string, c nodescript.Cert) {
	if n.obs.Certs == nil {
		n.obs.Certs = map[string]nodescript.Cert{}
	}
	n.obs.Certs[host] = c
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
func certStatus(s *api.DeploymentSpec, certs map[string]nodescript.Cert) []api.CertificateStatus {
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

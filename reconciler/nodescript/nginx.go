package nodescript

import (
	"fmt"
	"strings"

	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

// NginxSwitchInput is the input of nginx-switch.
type NginxSwitchInput struct {
	App, Slot string
	// Hosts are probed until each answers from Slot: the app's first
	// ingress host (or the app's name), or with TLS every host with a
	// certificate.
	Hosts []string
	Path  string // the health check path, probed
	// Token is the site's token (nodefiles.SiteToken) when Hosts are
	// probed over HTTPS, else empty.
	Token string
	// Site holds the site's parameters (Site.App must be App). The helper
	// renders the site from its own template (nodefiles.NginxSite renders
	// the same text); no site text is ever sent.
	Site nf.Site
}

// NginxSwitch installs the app's site through the bakery-sudo helper,
// reloads nginx, then waits until nginx answers from the new slot (its
// X-Bakery-Slot header): a reload returns before the new workers take
// over, and the old slot must not be stopped while old workers still send
// to it.
var NginxSwitch = define("nginx-switch", func(in NginxSwitchInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
	c.set("HOSTS", strings.Join(in.Hosts, " "))
	c.set("HPATH", in.Path)
	c.set("TOKEN", in.Token)
	c.siteArgs(in.App, in.Site)
})

// siteArgs sets SITEARGS, the helper's nginx-site-install arguments for s
// (validated words without blanks; the scripts expand them with globbing
// off).
func (c *call) siteArgs(app string, s nf.Site) {
	if err := s.Validate(); err != nil {
		c.fail("%v", err)
		return
	}
	if s.App != app {
		c.fail("site of %q for app %q", s.App, app)
	}
	c.set("SITEARGS", strings.Join(nf.SiteArgs(s), " "))
}

// NginxRemove deletes the app's nginx site, and reloads nginx if there
// was one.
var NginxRemove = define("nginx-remove", func(in AppInput, c *call) { c.app(in.App) })

// CertificateInput is the input of certificate.
type CertificateInput struct {
	App, Host string
	Email     string // the ACME account's email (ingress.tls.email)
	Server    string // the ACME directory URL
	// Site holds the parameters of the app's nginx site for the
	// certificates there are now (it serves the ACME challenge location
	// for every host).
	Site nf.Site
}

// Certificate makes nginx serve the ACME challenge for the app's hosts, waits
// until the reloaded nginx does, runs certbot (HTTP-01) through the
// bakery-sudo helper and prints the new certificate's line, which
// [FindCert] reads; a failure's reason is found by [WithCertbotDetail].
var Certificate = define("certificate", func(in CertificateInput, c *call) {
	c.app(in.App)
	c.set("HOST", in.Host)
	c.set("EMAIL", in.Email)
	c.set("SERVER", in.Server)
	c.set("HDR", nf.ACMEHeader)
	c.siteArgs(in.App, in.Site)
})

// RenewInput is the input of renew.
type RenewInput struct {
	Host   string
	Server string // the ACME directory URL
}

// Renew renews Host's certificate (forced: Bakery, not certbot's window,
// decides when one is due), reloads nginx after `nginx -t` and prints the
// new certificate's line, which [FindCert] reads.
var Renew = define("renew", func(in RenewInput, c *call) {
	c.set("HOST", in.Host)
	c.set("SERVER", in.Server)
})

// WithCertbotDetail adds what the ACME server said ("Detail: …" in
// certbot's output), else the last line of stderr, to a failed step's
// error; the whole output is in the rollout log.
func WithCertbotDetail(err error, res sshexec.Result) error {
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

package nodefiles

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"bakery.dev/bakery/api"
)

// ACMEWebroot is where certbot (through the node's bakery-sudo helper)
// puts HTTP-01 challenge files; nginx serves it under
// /.well-known/acme-challenge/. It is root-owned, outside Root, so that
// bakery-agent cannot point root's writes elsewhere with a symlink.
const ACMEWebroot = "/var/www/bakery-acme"

// ACMEHeader is sent by nginx with every answer from the challenge
// location, so that Bakery can tell when a reloaded nginx serves it.
const ACMEHeader = "X-Bakery-Acme"

// SiteHeader carries, on HTTPS answers, SiteToken of the certificates the
// loaded site serves, so that Bakery can tell when a reloaded nginx
// serves a new set (the active slot alone does not change then).
const SiteHeader = "X-Bakery-Site"

// SiteToken identifies a set of hosts served over HTTPS.
func SiteToken(certHosts []string) string {
	return Hash(strings.Join(certHosts, " "))[:12]
}

// CertDir is the certbot lineage of a host (its --cert-name is the host).
func CertDir(host string) string { return "/etc/letsencrypt/live/" + host }

// Site describes the nginx site of an app.
type Site struct {
	App string
	// Slot is the active slot, sent back as "X-Bakery-Slot: APP/SLOT" so
	// that a switch can be confirmed (the app's name in it: a request for
	// a host whose site is not loaded yet lands on nginx's default server,
	// which may be another app's site).
	Slot string
	// Hosts are the server names; without hosts the app's name is used,
	// so that host-less apps never claim nginx's default server.
	Hosts []string
	Port  int // the active slot's port
	// ListenPort is where nginx listens (default 80).
	ListenPort int
	// TLS says the hosts are meant to be served over HTTPS: port 80
	// serves ACME HTTP-01 challenges from ACMEWebroot for every host.
	TLS bool
	// CertHosts are the hosts (of Hosts) that have a certificate in
	// CertDir: they are served over HTTPS on TLSPort, and their plain
	// HTTP requests are redirected there (challenges excepted). The other
	// hosts keep being served over HTTP until their certificate exists.
	CertHosts []string
	// TLSPort is where nginx serves HTTPS (default 443).
	TLSPort int
	// HSTS sends Strict-Transport-Security on HTTPS answers.
	HSTS bool

	// NoWebSockets leaves out the Upgrade and Connection headers
	// (ingress.proxy.websockets: false).
	NoWebSockets bool
	// NoBuffering turns proxy_buffering off.
	NoBuffering bool
	// BodySize is client_max_body_size ("" for nginx's default).
	BodySize string
	// ReadTimeout and SendTimeout are proxy_read_timeout and
	// proxy_send_timeout in seconds (0 for nginx's default).
	ReadTimeout, SendTimeout int
	// Headers are added to every answer, in this order (names unique).
	Headers []Header
	// Redirects are hosts redirected permanently to another.
	Redirects []api.Redirect
	// Maintenance, when not empty, is the message of the 503 answers
	// nginx gives instead of proxying (maintenance mode).
	Maintenance string
}

// Header is a response header of a site.
type Header struct{ Name, Value string }

// MaintenanceRetryAfter is the Retry-After (seconds) of maintenance answers.
const MaintenanceRetryAfter = 60

// HSTSValue is the Strict-Transport-Security of HTTPS answers with HSTS.
const HSTSValue = "max-age=31536000"

// Validate applies the node helper's rules to every parameter.
func (s Site) Validate() error {
	rs := []string{api.ValidateName(s.App), ValidateSlot(s.Slot), api.ValidatePort(s.Port)}
	if s.ListenPort != 0 {
		rs = append(rs, api.ValidatePort(s.ListenPort))
	}
	if s.TLSPort != 0 {
		rs = append(rs, api.ValidatePort(s.TLSPort))
	}
	hosts := map[string]bool{}
	for _, h := range s.Hosts {
		rs = append(rs, api.ValidateHost(h))
		hosts[h] = true
	}
	for _, h := range s.CertHosts {
		rs = append(rs, api.ValidateCertificateHost(h))
		if !hosts[h] {
			rs = append(rs, fmt.Sprintf("certificate host %q is not one of the hosts", h))
		}
	}
	if s.BodySize != "" {
		rs = append(rs, api.ValidateBodySize(s.BodySize))
	}
	for _, t := range []int{s.ReadTimeout, s.SendTimeout} {
		if t < 0 || t > 86400 {
			rs = append(rs, fmt.Sprintf("invalid timeout %d (1-86400 seconds)", t))
		}
	}
	if len(s.Headers) > 20 || len(s.Redirects) > 20 {
		rs = append(rs, "at most 20 headers and 20 redirects")
	}
	names := map[string]bool{}
	for _, h := range s.Headers {
		rs = append(rs, api.ValidateHeaderName(h.Name), api.ValidateText(h.Value))
		if names[strings.ToLower(h.Name)] || strings.EqualFold(h.Name, "Strict-Transport-Security") || strings.EqualFold(h.Name, "Retry-After") {
			rs = append(rs, fmt.Sprintf("header %q repeated or reserved", h.Name))
		}
		names[strings.ToLower(h.Name)] = true
	}
	for _, r := range s.Redirects {
		rs = append(rs, ValidateRedirectHost(r.From), ValidateRedirectHost(r.To))
		if hosts[r.From] || r.From == s.App && len(s.Hosts) == 0 {
			rs = append(rs, fmt.Sprintf("redirected host %q is served", r.From))
		}
		hosts[r.From] = true
	}
	if s.Maintenance != "" {
		rs = append(rs, api.ValidateText(s.Maintenance))
	}
	for _, r := range rs {
		if r != "" {
			return fmt.Errorf("nginx site of %s: %s", s.App, r)
		}
	}
	return nil
}

// ValidateRedirectHost checks a host of a redirect: a host name without
// a wildcard (check_redirect_host in the helper).
func ValidateRedirectHost(h string) string {
	if r := api.ValidateHost(h); r != "" {
		return r
	}
	if strings.HasPrefix(h, "*.") {
		return fmt.Sprintf("%q: a redirect needs a plain host name", h)
	}
	return ""
}

// SiteArgs are the arguments of the helper's nginx-site-install (and
// render-site) verb for s: APP SLOT PORT, then --listen N, --tls-port N
// and --tls when set, then --host H per host and --cert H per
// certificate host, in order; then the proxy settings (--hsts,
// --no-websockets, --no-buffering, --body-size S, --read-timeout N,
// --send-timeout N), --header NAME B64VALUE per header, --redirect FROM TO
// per redirect and --maintenance B64MESSAGE. Free text travels base64
// encoded (words without blanks); the helper decodes and checks it.
func SiteArgs(s Site) []string {
	args := []string{s.App, s.Slot, strconv.Itoa(s.Port)}
	if s.ListenPort != 0 {
		args = append(args, "--listen", strconv.Itoa(s.ListenPort))
	}
	if s.TLSPort != 0 {
		args = append(args, "--tls-port", strconv.Itoa(s.TLSPort))
	}
	if s.TLS {
		args = append(args, "--tls")
	}
	for _, h := range s.Hosts {
		args = append(args, "--host", h)
	}
	for _, h := range s.CertHosts {
		args = append(args, "--cert", h)
	}
	if s.HSTS {
		args = append(args, "--hsts")
	}
	if s.NoWebSockets {
		args = append(args, "--no-websockets")
	}
	if s.NoBuffering {
		args = append(args, "--no-buffering")
	}
	if s.BodySize != "" {
		args = append(args, "--body-size", s.BodySize)
	}
	if s.ReadTimeout != 0 {
		args = append(args, "--read-timeout", strconv.Itoa(s.ReadTimeout))
	}
	if s.SendTimeout != 0 {
		args = append(args, "--send-timeout", strconv.Itoa(s.SendTimeout))
	}
	for _, h := range s.Headers {
		args = append(args, "--header", h.Name, b64(h.Value))
	}
	for _, r := range s.Redirects {
		args = append(args, "--redirect", r.From, r.To)
	}
	if s.Maintenance != "" {
		args = append(args, "--maintenance", b64(s.Maintenance))
	}
	return args
}

// NginxSite renders the app's nginx site: an upstream to the active slot
// and servers for the app's hosts (s must be valid: Validate). The node's
// bakery-sudo helper renders the same site from SiteArgs(s)
// (render_site); scripts/helper_test.go keeps the two byte-identical.
func NginxSite(s Site) string {
	listen := s.ListenPort
	if listen == 0 {
		listen = 80
	}
	tlsPort := s.TLSPort
	if tlsPort == 0 {
		tlsPort = 443
	}
	hasCert := map[string]bool{}
	if s.TLS {
		for _, h := range s.CertHosts {
			hasCert[h] = true
		}
	}
	var plain, secure []string
	for _, h := range s.Hosts {
		if hasCert[h] {
			secure = append(secure, h)
		} else {
			plain = append(plain, h)
		}
	}
	if len(s.Hosts) == 0 {
		plain = []string{s.App}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by Bakery for app %s; do not edit: drift is repaired.\n", s.App)
	fmt.Fprintf(&b, "upstream bakery-%s {\n    server 127.0.0.1:%d max_fails=0;\n}\n", s.App, s.Port)
	// Requests the app answers are logged for the traffic analytics
	// (AccessLogFormat; redirects and ACME challenges are not).
	fmt.Fprintf(&b, "\nlog_format %s %s;\n", AccessLogFormatName(s.App), AccessLogFormat)
	if !s.NoWebSockets {
		// A Connection header for the app: "upgrade" when the client asks
		// for one, else "close" (what nginx sends without the map).
		fmt.Fprintf(&b, "\nmap $http_upgrade %s {\n    default upgrade;\n    ~^$ close;\n}\n", connVar(s.App))
	}
	if len(plain) > 0 {
		fmt.Fprintf(&b, "\nserver {\n    listen %d;\n    server_name %s;\n", listen, strings.Join(plain, " "))
		if s.TLS {
			writeChallenge(&b)
		}
		writeProxy(&b, s, "")
		b.WriteString("}\n")
	}
	if len(secure) > 0 {
		// Plain HTTP for hosts with a certificate: challenges (renewals)
		// still work, everything else moves to HTTPS.
		fmt.Fprintf(&b, "\nserver {\n    listen %d;\n    server_name %s;\n", listen, strings.Join(secure, " "))
		writeChallenge(&b)
		b.WriteString("\n    location / {\n")
		if tlsPort == 443 {
			b.WriteString("        return 301 https://$host$request_uri;\n")
		} else {
			fmt.Fprintf(&b, "        return 301 https://$host:%d$request_uri;\n", tlsPort)
		}
		b.WriteString("    }\n}\n")
		for _, h := range secure {
			// One server per host: each has its own certificate lineage.
			fmt.Fprintf(&b, "\nserver {\n    listen %d ssl http2;\n    server_name %s;\n", tlsPort, h)
			fmt.Fprintf(&b, "    ssl_certificate %s/fullchain.pem;\n", CertDir(h))
			fmt.Fprintf(&b, "    ssl_certificate_key %s/privkey.pem;\n", CertDir(h))
			b.WriteString("    ssl_protocols TLSv1.2 TLSv1.3;\n")
			writeProxy(&b, s, SiteToken(secure))
			b.WriteString("}\n")
		}
	}
	for _, r := range s.Redirects {
		to := "http://" + r.To
		if hasCert[r.To] && tlsPort == 443 {
			to = "https://" + r.To
		} else if hasCert[r.To] {
			to = fmt.Sprintf("https://%s:%d", r.To, tlsPort)
		} else if listen != 80 {
			to = fmt.Sprintf("http://%s:%d", r.To, listen)
		}
		fmt.Fprintf(&b, "\nserver {\n    listen %d;\n    server_name %s;\n", listen, r.From)
		fmt.Fprintf(&b, "\n    location / {\n        return 301 %s$request_uri;\n    }\n}\n", to)
	}
	return b.String()
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// connVar is the variable of the app's Upgrade → Connection map (nginx
// variable names take no '-'; app names have no '_').
func connVar(app string) string {
	return "$bakery_" + strings.ReplaceAll(app, "-", "_") + "_connection"
}

func writeChallenge(b *strings.Builder) {
	fmt.Fprintf(b, "\n    location ^~ /.well-known/acme-challenge/ {\n")
	fmt.Fprintf(b, "        root %s;\n", ACMEWebroot)
	fmt.Fprintf(b, "        default_type text/plain;\n")
	fmt.Fprintf(b, "        add_header %s 1 always;\n", ACMEHeader)
	fmt.Fprintf(b, "    }\n")
}

// writeProxy writes the location that proxies to the active slot (or,
// in maintenance, answers 503); with a token (an HTTPS server), it sends
// SiteHeader and HSTS too (add_header inside a location hides those of
// its server).
func writeProxy(b *strings.Builder, s Site, token string) {
	fmt.Fprintf(b, "\n    location / {\n")
	if s.Maintenance == "" {
		fmt.Fprintf(b, "        proxy_pass http://bakery-%s;\n", s.App)
	}
	fmt.Fprintf(b, "        access_log %s %s;\n", AccessLogPath(s.App), AccessLogFormatName(s.App))
	if s.Maintenance == "" {
		fmt.Fprintf(b, "        proxy_http_version 1.1;\n")
		fmt.Fprintf(b, "        proxy_set_header Host $host;\n")
		fmt.Fprintf(b, "        proxy_set_header X-Real-IP $remote_addr;\n")
		fmt.Fprintf(b, "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n")
		fmt.Fprintf(b, "        proxy_set_header X-Forwarded-Proto $scheme;\n")
		if !s.NoWebSockets {
			fmt.Fprintf(b, "        proxy_set_header Upgrade $http_upgrade;\n")
			fmt.Fprintf(b, "        proxy_set_header Connection %s;\n", connVar(s.App))
		}
		if s.NoBuffering {
			fmt.Fprintf(b, "        proxy_buffering off;\n")
		}
		if s.ReadTimeout != 0 {
			fmt.Fprintf(b, "        proxy_read_timeout %ds;\n", s.ReadTimeout)
		}
		if s.SendTimeout != 0 {
			fmt.Fprintf(b, "        proxy_send_timeout %ds;\n", s.SendTimeout)
		}
		if s.BodySize != "" {
			fmt.Fprintf(b, "        client_max_body_size %s;\n", s.BodySize)
		}
	}
	fmt.Fprintf(b, "        add_header X-Bakery-Slot %s/%s always;\n", s.App, s.Slot)
	if token != "" {
		fmt.Fprintf(b, "        add_header %s %s always;\n", SiteHeader, token)
		if s.HSTS {
			fmt.Fprintf(b, "        add_header Strict-Transport-Security \"%s\" always;\n", HSTSValue)
		}
	}
	for _, h := range s.Headers {
		fmt.Fprintf(b, "        add_header %s \"%s\" always;\n", h.Name, h.Value)
	}
	if s.Maintenance != "" {
		fmt.Fprintf(b, "        add_header Retry-After %d always;\n", MaintenanceRetryAfter)
		fmt.Fprintf(b, "        default_type text/plain;\n")
		fmt.Fprintf(b, "        return 503 \"%s\\n\";\n", s.Maintenance)
	}
	fmt.Fprintf(b, "    }\n")
}

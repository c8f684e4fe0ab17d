package api

import (
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
	"time"
)

// FieldError is one problem with one field, named by its path
// ("spec.run.port").
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// FieldErrors is every problem found in an object. A nil FieldErrors means
// the object is valid.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// Err returns es as an error, or nil when es is empty.
func (es FieldErrors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

func (es *FieldErrors) add(field, format string, args ...any) {
	*es = append(*es, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

var (
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	envName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	commitID     = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)
	labelKey     = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	labelValue   = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
	hostnameRE   = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	gitRefRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	httpPathRE   = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$`)
	// emailRE, certHostRE and acmeServerRE are exactly what the node's
	// bakery-sudo helper accepts (check_email, check_domain,
	// check_https_url in scripts/install-node-agent.sh).
	headerNameRE  = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9]{0,63}$`)
	textRE        = regexp.MustCompile(`^[ !#%&'()*+,\-./0-9:<=>?@A-Z\[\]^_` + "`" + `a-z|~]{1,512}$`)
	bodySizeRE    = regexp.MustCompile(`^(0|[1-9][0-9]{0,5}[kmg]?)$`)
	emailRE       = regexp.MustCompile(`^[A-Za-z0-9_%+][A-Za-z0-9._%+-]*@[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$`)
	certHostRE    = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	acmeServerRE  = regexp.MustCompile(`^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$`)
	unixUserRE    = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)
	hostKeyTypeRE = regexp.MustCompile(`^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$`)
)

// ValidateName checks that name is a DNS-1123 label (at most 63
// characters of a-z, 0-9 and '-', starting and ending alphanumeric), and
// returns the reason when it is not.
func ValidateName(name string) string {
	switch {
	case name == "":
		return "is required"
	case len(name) > 63:
		return "must be at most 63 characters"
	case !dns1123Label.MatchString(name):
		return fmt.Sprintf("%q must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return ""
}

// MaxProcessNameLength bounds the name of a process (spec.processes) so
// that its unit names stay short.
const MaxProcessNameLength = 20

// ValidateProcessName checks the name of a process (spec.processes[].name):
// a DNS-1123 label of at most MaxProcessNameLength characters, none of
// whose '-'-separated parts is "blue" or "green", so that a node's unit
// name bakery-APP-SLOT-PROC@N.service names exactly one app, slot and
// process. It returns the reason when it is not acceptable.
func ValidateProcessName(name string) string {
	switch {
	case name == "":
		return "is required"
	case len(name) > MaxProcessNameLength:
		return fmt.Sprintf("%q: must be at most %d characters", name, MaxProcessNameLength)
	case !dns1123Label.MatchString(name):
		return fmt.Sprintf("%q must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit", name)
	case strings.Contains("-"+name+"-", "-blue-") || strings.Contains("-"+name+"-", "-green-"):
		return fmt.Sprintf("%q: no '-'-separated part may be \"blue\" or \"green\" (the slot names in its unit's name)", name)
	}
	return ""
}

// ValidateHost checks a host name an app is served under (ingress.hosts,
// nginx's server_name): lower-case DNS labels separated by dots, at most
// 253 characters, optionally starting with "*." (a wildcard server name).
// The node's bakery-sudo helper applies the same rule (check_host in
// scripts/install-node-agent.sh; scripts/helper_test.go runs one table
// against both).
func ValidateHost(host string) string {
	if len(host) > 253 || !hostnameRE.MatchString(host) {
		return fmt.Sprintf("%q is not a valid lower-case host name", host)
	}
	return ""
}

// ValidateHeaderName checks the name of a response header of
// ingress.proxy.headers: letters, digits and '-' (an HTTP token, narrowed),
// at most 64, not X-Bakery-* (Bakery's own). The node's helper applies the
// same rule (check_header_name).
func ValidateHeaderName(name string) string {
	switch {
	case !headerNameRE.MatchString(name):
		return fmt.Sprintf("%q is not a header name (letters, digits and '-', at most 64)", name)
	case strings.HasPrefix(strings.ToLower(name), "x-bakery-"):
		return fmt.Sprintf("%q: X-Bakery-* headers are Bakery's own", name)
	}
	return ""
}

// ValidateText checks a header value of ingress.proxy.headers or the
// maintenance message: 1-512 printable ASCII characters without the ones
// nginx's configuration syntax gives a meaning inside a quoted string or
// after it (" \ ; { } $). The node's helper applies the same rule
// (check_text) before it writes the text, in double quotes, into a site.
func ValidateText(s string) string {
	if !textRE.MatchString(s) {
		return fmt.Sprintf("%q: want 1-512 printable ASCII characters without \" \\ ; { } $", s)
	}
	return ""
}

// ValidateBodySize checks a client_max_body_size: digits (at most 6, no
// leading zero but "0") with an optional k, m or g.
func ValidateBodySize(s string) string {
	if !bodySizeRE.MatchString(s) {
		return fmt.Sprintf("%q is not a size (a number with an optional k, m or g, e.g. 20m; 0 for no limit)", s)
	}
	return ""
}

// ValidateEmail checks the ACME account e-mail address of ingress.tls and
// returns the reason when it is not acceptable ("" when it is). Only plain
// addresses pass: no quotes, spaces or shell characters.
func ValidateEmail(email string) string {
	if len(email) > 254 || !emailRE.MatchString(email) {
		return fmt.Sprintf("%q is not a plain e-mail address (letters, digits and ._%%+- before the @, a domain name after it)", email)
	}
	return ""
}

// ValidateCertificateHost checks that host can get a certificate over
// HTTP-01: a fully qualified DNS name (at least two labels, each at most
// 63 characters, the last starting with a letter), no wildcard, no IP
// address.
func ValidateCertificateHost(host string) string {
	switch {
	case strings.HasPrefix(host, "*."):
		return fmt.Sprintf("%q: wildcard certificates need the DNS-01 challenge; ingress.tls uses HTTP-01 and needs plain host names", host)
	case len(host) > 253 || !certHostRE.MatchString(host):
		return fmt.Sprintf("%q is not a DNS name a certificate can be issued for (lower-case labels separated by dots, the last one starting with a letter)", host)
	}
	return ""
}

// ValidateACMEServer checks an ACME directory URL: https, a host name or
// address, an optional port and a plain path.
func ValidateACMEServer(u string) string {
	if len(u) > 2000 || !acmeServerRE.MatchString(u) {
		return fmt.Sprintf("%q must be an https:// ACME directory URL (host, optional port, path of letters, digits and ._~/-)", u)
	}
	return ""
}

// ValidateMeta checks user-writable metadata.
func ValidateMeta(m *ObjectMeta) FieldErrors {
	var es FieldErrors
	if r := ValidateName(m.Name); r != "" {
		es.add("metadata.name", "%s", r)
	}
	validateLabels(&es, "metadata.labels", m.Labels)
	for k := range m.Annotations {
		if len(k) > 253 || !labelKey.MatchString(k) {
			es.add("metadata.annotations", "invalid key %q", k)
		}
	}
	return es
}

func validateLabels(es *FieldErrors, path string, labels map[string]string) {
	for k, v := range labels {
		if len(k) > 253 || !labelKey.MatchString(k) {
			es.add(path, "invalid key %q", k)
		}
		if len(v) > 63 || !labelValue.MatchString(v) {
			es.add(path+"."+k, "invalid value %q: at most 63 letters, digits, '-', '_' or '.'", v)
		}
	}
}

func validateTypeMeta(es *FieldErrors, t *TypeMeta, kind string) {
	if t.APIVersion != APIVersion {
		es.add("apiVersion", "must be %q, not %q", APIVersion, t.APIVersion)
	}
	if t.Kind != kind {
		es.add("kind", "must be %q, not %q", kind, t.Kind)
	}
}

func validPort(p int) bool { return p >= 1 && p <= 65535 }

// ValidatePort checks a TCP port (1-65535) and returns the reason when it
// is not one. The node's bakery-sudo helper applies the same rule
// (check_port).
func ValidatePort(p int) string {
	if !validPort(p) {
		return fmt.Sprintf("%d is not a TCP port (1-65535)", p)
	}
	return ""
}

// Validate implements Object.
func (n *Node) Validate() FieldErrors {
	var es FieldErrors
	validateTypeMeta(&es, &n.TypeMeta, KindNode)
	es = append(es, ValidateMeta(&n.Metadata)...)
	s := &n.Spec
	if !s.Local {
		if s.Address == "" {
			es.add("spec.address", "is required (or set spec.local: true)")
		} else if net.ParseIP(s.Address) == nil && !hostnameRE.MatchString(strings.ToLower(s.Address)) || strings.HasPrefix(s.Address, "*") {
			es.add("spec.address", "%q is neither an IP address nor a host name", s.Address)
		}
		if !validPort(s.Port) {
			es.add("spec.port", "must be 1-65535")
		}
		if s.User == "" || !unixUserRE.MatchString(s.User) || len(s.User) > 32 {
			es.add("spec.user", "%q is not a valid user name", s.User)
		}
	} else {
		if s.Via != "" {
			es.add("spec.via", "cannot be used with spec.local")
		}
	}
	if s.HostKey != "" && !hostKeyTypeRE.MatchString(s.HostKey) {
		es.add("spec.hostKey", "must be a public key in authorized_keys form (\"ssh-ed25519 AAAA…\")")
	}
	if s.Via != "" {
		if r := ValidateName(s.Via); r != "" {
			es.add("spec.via", "%s", r)
		} else if s.Via == n.Metadata.Name {
			es.add("spec.via", "a node cannot be its own jump host")
		}
	}
	return es
}

// Validate implements Object. It expects a defaulted object.
func (d *Deployment) Validate() FieldErrors {
	var es FieldErrors
	validateTypeMeta(&es, &d.TypeMeta, KindDeployment)
	es = append(es, ValidateMeta(&d.Metadata)...)
	s := &d.Spec

	validateSource(&es, &s.Source)
	validatePlacement(&es, s)
	validateRuntime(&es, s)
	validateRun(&es, s)
	validateProcesses(&es, s.Processes)
	validatePersistent(&es, s.Persistent)
	validateResources(&es, s.Resources)
	validateRelease(&es, s.Release)
	validateHealthCheck(&es, &s.HealthCheck)
	validateIngress(&es, s.Ingress)
	validateStrategy(&es, s)
	if s.ProgressDeadline != nil && s.ProgressDeadline.Duration <= 0 {
		es.add("spec.progressDeadline", "must be positive")
	}
	validateSchedules(&es, s)
	return es
}

// validateSource checks spec.source.
func validateSource(es *FieldErrors, src *Source) {
	if src.Repo == "" {
		es.add("spec.source.repo", "is required")
	} else if strings.ContainsAny(src.Repo, "\x00\n\r") || strings.HasPrefix(src.Repo, "-") {
		es.add("spec.source.repo", "%q is not a valid repository URL or path", src.Repo)
	}
	if src.Ref != "" && (!gitRefRE.MatchString(src.Ref) || strings.Contains(src.Ref, "..")) {
		es.add("spec.source.ref", "%q is not a valid branch or tag name", src.Ref)
	}
	if src.Commit != "" && !commitID.MatchString(src.Commit) {
		es.add("spec.source.commit", "must be a full lower-case hex commit id (40 characters)")
	}
}

// validatePlacement checks spec.nodes and spec.nodeSelector.
func validatePlacement(es *FieldErrors, s *DeploymentSpec) {
	if len(s.Nodes) == 0 && len(s.NodeSelector) == 0 {
		es.add("spec.nodes", "give spec.nodes or spec.nodeSelector")
	}
	seen := map[string]bool{}
	for i, n := range s.Nodes {
		p := fmt.Sprintf("spec.nodes[%d]", i)
		if r := ValidateName(n); r != "" {
			es.add(p, "%s", r)
		} else if seen[n] {
			es.add(p, "duplicate node %q", n)
		}
		seen[n] = true
	}
	validateLabels(es, "spec.nodeSelector", s.NodeSelector)
}

// validateRuntime checks spec.runtime and what it requires.
func validateRuntime(es *FieldErrors, s *DeploymentSpec) {
	switch s.Runtime {
	case RuntimeSystemd:
		switch {
		case s.Run.Command != "":
		case len(s.Processes) == 0:
			es.add("spec.run.command", "is required with runtime systemd (or give spec.processes for a worker-only app)")
		case s.Ingress != nil:
			es.add("spec.ingress", "needs spec.run.command: a worker-only app (spec.processes only) serves no HTTP")
		}
		if s.Docker != nil {
			es.add("spec.docker", "is only allowed with runtime docker")
		}
	case RuntimeDocker:
		validateDocker(es, s)
	default:
		es.add("spec.runtime", "must be systemd or docker, not %q", s.Runtime)
	}
}

// validateRun checks spec.run (port, env, envFrom) and the build commands.
func validateRun(es *FieldErrors, s *DeploymentSpec) {
	if s.Run.Port != nil && (!validPort(*s.Run.Port) || *s.Run.Port == 65535) {
		es.add("spec.run.port", "must be 1-65534 (the green slot uses port+1)")
	}
	envSeen := map[string]bool{}
	for i, e := range s.Run.Env {
		p := fmt.Sprintf("spec.run.env[%d].name", i)
		switch {
		case !envName.MatchString(e.Name):
			es.add(p, "%q is not a valid environment variable name", e.Name)
		case e.Name == "PORT":
			es.add(p, "PORT is set by Bakery to the slot's port")
		case envSeen[e.Name]:
			es.add(p, "duplicate variable %q", e.Name)
		}
		envSeen[e.Name] = true
		if strings.ContainsRune(e.Value, 0) {
			es.add(fmt.Sprintf("spec.run.env[%d].value", i), "must not contain NUL")
		}
		if e.ValueFrom != nil {
			p := fmt.Sprintf("spec.run.env[%d].valueFrom", i)
			ref := e.ValueFrom.SecretKeyRef
			switch {
			case e.Value != "":
				es.add(p, "give value or valueFrom, not both")
			case ref == nil:
				es.add(p+".secretKeyRef", "is required")
			default:
				if r := ValidateName(ref.Name); r != "" {
					es.add(p+".secretKeyRef.name", "%s", r)
				}
				if r := validSecretKey(ref.Key); r != "" {
					es.add(p+".secretKeyRef.key", "%s", r)
				}
			}
		}
	}
	fromSeen := map[string]bool{}
	for i, e := range s.Run.EnvFrom {
		p := fmt.Sprintf("spec.run.envFrom[%d].secretRef", i)
		if r := ValidateName(e.SecretRef); r != "" {
			es.add(p, "%s", r)
		} else if fromSeen[e.SecretRef] {
			es.add(p, "secret %q is listed twice", e.SecretRef)
		}
		fromSeen[e.SecretRef] = true
	}
	for _, c := range []struct{ path, v string }{{"spec.build.install", s.Build.Install}, {"spec.build.test", s.Build.Test}, {"spec.build.build", s.Build.Build}, {"spec.run.command", s.Run.Command}} {
		if strings.ContainsRune(c.v, 0) {
			es.add(c.path, "must not contain NUL")
		}
	}
}

// validateRelease checks spec.release.
func validateRelease(es *FieldErrors, r *Release) {
	if r != nil {
		switch {
		case strings.TrimSpace(r.Command) == "":
			es.add("spec.release.command", "is required (remove spec.release to run no release command)")
		case strings.ContainsRune(r.Command, 0):
			es.add("spec.release.command", "must not contain NUL")
		}
		if t := r.Timeout; t != nil && (t.Duration < time.Second || t.Duration > MaxReleaseTimeout) {
			es.add("spec.release.timeout", "must be 1s-24h")
		}
	}
}

// validateHealthCheck checks spec.healthCheck.
func validateHealthCheck(es *FieldErrors, h *HealthCheck) {
	if !httpPathRE.MatchString(h.Path) {
		es.add("spec.healthCheck.path", "must be an absolute URL path such as /healthz")
	}
	positive := func(path string, d *Duration) {
		if d != nil && d.Duration <= 0 {
			es.add(path, "must be positive")
		}
	}
	positive("spec.healthCheck.timeout", h.Timeout)
	positive("spec.healthCheck.interval", h.Interval)
	if h.StartPeriod != nil && h.StartPeriod.Duration < 0 {
		es.add("spec.healthCheck.startPeriod", "must not be negative")
	}
	if h.Retries < 1 || h.Retries > 1000 {
		es.add("spec.healthCheck.retries", "must be 1-1000")
	}
}

// validateIngress checks spec.ingress: hosts, TLS, proxy settings, redirects, maintenance.
func validateIngress(es *FieldErrors, ing *Ingress) {
	if ing != nil {
		hs := map[string]bool{}
		for i, host := range ing.Hosts {
			p := fmt.Sprintf("spec.ingress.hosts[%d]", i)
			if r := ValidateHost(host); r != "" {
				es.add(p, "%s", r)
			} else if hs[host] {
				es.add(p, "duplicate host %q", host)
			}
			hs[host] = true
		}
		if ing.TLS != nil {
			if len(ing.Hosts) == 0 {
				es.add("spec.ingress.tls", "needs spec.ingress.hosts")
			}
			for i, host := range ing.Hosts {
				if r := ValidateCertificateHost(host); r != "" && hostnameRE.MatchString(host) {
					es.add(fmt.Sprintf("spec.ingress.hosts[%d]", i), "%s", r)
				}
			}
			if r := ValidateEmail(ing.TLS.Email); r != "" {
				es.add("spec.ingress.tls.email", "%s", r)
			}
			if ing.TLS.Server != "" {
				if r := ValidateACMEServer(ing.TLS.Server); r != "" {
					es.add("spec.ingress.tls.server", "%s", r)
				}
			}
		}
		if p := ing.Proxy; p != nil {
			if p.ClientMaxBodySize != "" {
				if r := ValidateBodySize(p.ClientMaxBodySize); r != "" {
					es.add("spec.ingress.proxy.clientMaxBodySize", "%s", r)
				}
			}
			for _, t := range []struct {
				f string
				d *Duration
			}{{"readTimeout", p.ReadTimeout}, {"sendTimeout", p.SendTimeout}} {
				if f, d := t.f, t.d; d != nil && (d.Duration < time.Second || d.Duration > 24*time.Hour || d.Duration%time.Second != 0) {
					es.add("spec.ingress.proxy."+f, "must be whole seconds, 1s-24h")
				}
			}
			if len(p.Headers) > 20 {
				es.add("spec.ingress.proxy.headers", "at most 20 headers")
			}
			names := make([]string, 0, len(p.Headers))
			for k := range p.Headers {
				names = append(names, k)
			}
			sort.Strings(names)
			seen := map[string]bool{}
			for _, k := range names {
				fp := fmt.Sprintf("spec.ingress.proxy.headers[%q]", k)
				if r := ValidateHeaderName(k); r != "" {
					es.add(fp, "%s", r)
				} else if seen[strings.ToLower(k)] {
					es.add(fp, "duplicate header (names are case-insensitive)")
				} else if strings.EqualFold(k, "Strict-Transport-Security") {
					es.add(fp, "use spec.ingress.tls.hsts")
				}
				seen[strings.ToLower(k)] = true
				if r := ValidateText(p.Headers[k]); r != "" {
					es.add(fp, "%s", r)
				}
			}
		}
		if len(ing.Redirects) > 20 {
			es.add("spec.ingress.redirects", "at most 20 redirects")
		}
		froms := map[string]bool{}
		for i, rd := range ing.Redirects {
			p := fmt.Sprintf("spec.ingress.redirects[%d]", i)
			for _, fh := range [][2]string{{"from", rd.From}, {"to", rd.To}} {
				if r := ValidateHost(fh[1]); r != "" || strings.HasPrefix(fh[1], "*.") {
					es.add(p+"."+fh[0], "%q is not a plain lower-case host name", fh[1])
				}
			}
			switch {
			case hs[rd.From]:
				es.add(p+".from", "%q is one of spec.ingress.hosts (it is served, not redirected)", rd.From)
			case froms[rd.From]:
				es.add(p+".from", "duplicate redirect of %q", rd.From)
			case rd.From == rd.To:
				es.add(p+".to", "redirects %q to itself", rd.From)
			}
			froms[rd.From] = true
		}
		if m := ing.Maintenance; m != nil && m.Message != "" {
			if r := ValidateText(m.Message); r != "" {
				es.add("spec.ingress.maintenance.message", "%s", r)
			}
		}
	}
}

// validateStrategy checks spec.strategy, spec.build.on and spec.keepReleases.
func validateStrategy(es *FieldErrors, s *DeploymentSpec) {
	if s.Strategy.Type != StrategyBlueGreen {
		es.add("spec.strategy.type", "must be BlueGreen, not %q", s.Strategy.Type)
	}
	if s.Strategy.MaxUnavailable < 1 {
		es.add("spec.strategy.maxUnavailable", "must be at least 1")
	}
	if s.Build.On != "" && s.Build.On != BuildOnOne && s.Build.On != BuildOnEach {
		es.add("spec.build.on", "must be one or each, not %q", s.Build.On)
	}
	if s.Strategy.MaxParallel < 0 {
		es.add("spec.strategy.maxParallel", "must not be negative (0: all target nodes at once)")
	}
	if s.Strategy.Drain != nil && s.Strategy.Drain.Duration < 0 {
		es.add("spec.strategy.drain", "must not be negative")
	}
	if s.KeepReleases < 1 || s.KeepReleases > 100 {
		es.add("spec.keepReleases", "must be 1-100")
	}
}

// dockerfilePath is a relative path of plain segments: it reaches the
// node's shell (docker build -f) and must stay inside the release.
var dockerfilePath = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$`)

// validateDocker checks what runtime docker passes to docker on the node.
func validateDocker(es *FieldErrors, s *DeploymentSpec) {
	if s.Docker != nil {
		if s.Docker.Network != "bridge" && s.Docker.Network != "host" {
			es.add("spec.docker.network", "must be bridge or host, not %q", s.Docker.Network)
		}
		if f := s.Docker.Dockerfile; len(f) > 255 || !dockerfilePath.MatchString(f) || strings.Contains(f, "..") {
			es.add("spec.docker.dockerfile", "%q must be a relative path inside the repository (letters, digits, . _ - and /; no ..)", f)
		}
		keys := make([]string, 0, len(s.Docker.BuildArgs))
		for k := range s.Docker.BuildArgs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := "spec.docker.buildArgs." + k
			if !envName.MatchString(k) {
				p = fmt.Sprintf("spec.docker.buildArgs[%q]", k)
				es.add(p, "%q is not a valid build argument name", k)
				continue
			}
			if strings.HasPrefix(k, "BAKERY_") {
				es.add(p, "names starting with BAKERY_ are set by Bakery")
			}
			if v := s.Docker.BuildArgs[k]; strings.ContainsAny(v, "\x00\n\r") {
				es.add(p, "must not contain NUL or line breaks")
			}
		}
	}
	// docker's --env-file holds one NAME=value per line, taken literally:
	// a value cannot span lines.
	for i, e := range s.Run.Env {
		if strings.ContainsAny(e.Value, "\n\r") {
			es.add(fmt.Sprintf("spec.run.env[%d].value", i), "must not contain line breaks with runtime docker (docker env files hold one line per variable)")
		}
	}
	for _, c := range []struct{ path, v string }{{"spec.build.install", s.Build.Install}, {"spec.build.test", s.Build.Test}, {"spec.build.build", s.Build.Build}} {
		if c.v != "" {
			es.add(c.path, "is not used with runtime docker: put build and test steps into the Dockerfile")
		}
	}
}

// validateProcesses checks spec.processes.
func validateProcesses(es *FieldErrors, procs []Process) {
	seen := map[string]bool{}
	for i, p := range procs {
		path := fmt.Sprintf("spec.processes[%d]", i)
		if r := ValidateProcessName(p.Name); r != "" {
			es.add(path+".name", "%s", r)
		} else if seen[p.Name] {
			es.add(path+".name", "duplicate process %q", p.Name)
		}
		seen[p.Name] = true
		switch {
		case strings.TrimSpace(p.Command) == "":
			es.add(path+".command", "is required")
		case strings.ContainsRune(p.Command, 0):
			es.add(path+".command", "must not contain NUL")
		}
		if p.Replicas < 1 || p.Replicas > MaxProcessReplicas {
			es.add(path+".replicas", "must be 1-99")
		}
		if t := p.StopTimeout; t != nil && (t.Duration < time.Second || t.Duration > 24*time.Hour || t.Duration%time.Second != 0) {
			es.add(path+".stopTimeout", "must be whole seconds, 1s-24h")
		}
		if h := p.HealthCheck; h != nil && (strings.TrimSpace(h.Exec) == "" || strings.ContainsRune(h.Exec, 0)) {
			es.add(path+".healthCheck.exec", "must be a command (no NUL)")
		}
	}
}

// MaxProcessReplicas bounds spec.processes[].replicas (instances per node;
// the node helper's check_replicas).
const MaxProcessReplicas = 99

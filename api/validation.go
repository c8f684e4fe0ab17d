package api

import (
	"fmt"
	"net"
	"regexp"
	"strings"
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
	dns1123Label  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	envName       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	commitID      = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)
	labelKey      = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	labelValue    = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
	hostnameRE    = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	gitRefRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	httpPathRE    = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$`)
	emailRE       = regexp.MustCompile(`^[^@\s'"\\]+@[^@\s'"\\]+\.[^@\s'"\\]+$`)
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

	if s.Source.Repo == "" {
		es.add("spec.source.repo", "is required")
	} else if strings.ContainsAny(s.Source.Repo, "\x00\n\r") || strings.HasPrefix(s.Source.Repo, "-") {
		es.add("spec.source.repo", "%q is not a valid repository URL or path", s.Source.Repo)
	}
	if s.Source.Ref != "" && (!gitRefRE.MatchString(s.Source.Ref) || strings.Contains(s.Source.Ref, "..")) {
		es.add("spec.source.ref", "%q is not a valid branch or tag name", s.Source.Ref)
	}
	if s.Source.Commit != "" && !commitID.MatchString(s.Source.Commit) {
		es.add("spec.source.commit", "must be a full lower-case hex commit id (40 characters)")
	}

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
	validateLabels(&es, "spec.nodeSelector", s.NodeSelector)

	switch s.Runtime {
	case RuntimeSystemd:
		if s.Run.Command == "" {
			es.add("spec.run.command", "is required with runtime systemd")
		}
		if s.Docker != nil {
			es.add("spec.docker", "is only allowed with runtime docker")
		}
	case RuntimeDocker:
		if s.Docker != nil {
			if s.Docker.Network != "bridge" && s.Docker.Network != "host" {
				es.add("spec.docker.network", "must be bridge or host, not %q", s.Docker.Network)
			}
			if strings.HasPrefix(s.Docker.Dockerfile, "/") || strings.Contains(s.Docker.Dockerfile, "..") {
				es.add("spec.docker.dockerfile", "must be a relative path inside the repository")
			}
			for k := range s.Docker.BuildArgs {
				if !envName.MatchString(k) {
					es.add("spec.docker.buildArgs", "invalid name %q", k)
				}
			}
		}
	default:
		es.add("spec.runtime", "must be systemd or docker, not %q", s.Runtime)
	}
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

	h := &s.HealthCheck
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

	if ing := s.Ingress; ing != nil {
		hs := map[string]bool{}
		for i, host := range ing.Hosts {
			p := fmt.Sprintf("spec.ingress.hosts[%d]", i)
			if len(host) > 253 || !hostnameRE.MatchString(host) {
				es.add(p, "%q is not a valid lower-case host name", host)
			} else if hs[host] {
				es.add(p, "duplicate host %q", host)
			}
			hs[host] = true
		}
		if ing.TLS != nil {
			if len(ing.Hosts) == 0 {
				es.add("spec.ingress.tls", "needs spec.ingress.hosts")
			}
			if !emailRE.MatchString(ing.TLS.Email) {
				es.add("spec.ingress.tls.email", "must be an e-mail address")
			}
			if ing.TLS.Server != "" && !strings.HasPrefix(ing.TLS.Server, "https://") {
				es.add("spec.ingress.tls.server", "must be an https:// ACME directory URL")
			}
		}
	}
	if s.Strategy.Type != StrategyBlueGreen {
		es.add("spec.strategy.type", "must be BlueGreen, not %q", s.Strategy.Type)
	}
	if s.Strategy.MaxUnavailable < 1 {
		es.add("spec.strategy.maxUnavailable", "must be at least 1")
	}
	if s.Strategy.Drain != nil && s.Strategy.Drain.Duration < 0 {
		es.add("spec.strategy.drain", "must not be negative")
	}
	if s.KeepReleases < 1 || s.KeepReleases > 100 {
		es.add("spec.keepReleases", "must be 1-100")
	}
	positive("spec.progressDeadline", s.ProgressDeadline)
	return es
}

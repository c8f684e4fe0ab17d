package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func validDeployment() *Deployment {
	port := 8000
	d := &Deployment{
		TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindDeployment},
		Metadata: ObjectMeta{Name: "hello", Labels: map[string]string{"team": "web"}},
		Spec: DeploymentSpec{
			Source:  Source{Repo: "/srv/git/hello.git"},
			Nodes:   []string{"web-1"},
			Run:     Run{Command: "node server.js", Port: &port, Env: []EnvVar{{Name: "GREETING", Value: "hi"}}},
			Ingress: &Ingress{Hosts: []string{"hello.example.test"}},
		},
	}
	d.Default()
	return d
}

func fields(es FieldErrors) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Field)
	}
	return out
}

func TestDeploymentDefaults(t *testing.T) {
	d := &Deployment{}
	d.Default()
	s := d.Spec
	if s.Source.Ref != "main" || s.Runtime != RuntimeSystemd || s.KeepReleases != 3 ||
		s.HealthCheck.Path != "/" || s.HealthCheck.Retries != DefaultHealthRetries ||
		s.HealthCheck.Timeout.Duration != 2*time.Second || s.Strategy.Type != StrategyBlueGreen ||
		s.Strategy.MaxUnavailable != 1 || s.ProgressDeadline.Duration != 10*time.Minute {
		t.Fatalf("defaults: %+v", s)
	}
	// Defaulting is idempotent.
	before := string(d.SpecJSON())
	d.Default()
	if string(d.SpecJSON()) != before {
		t.Fatal("Default is not idempotent")
	}
	// A pinned commit needs no ref.
	p := &Deployment{Spec: DeploymentSpec{Source: Source{Commit: "0123456789abcdef0123456789abcdef01234567"}}}
	p.Default()
	if p.Spec.Source.Ref != "" {
		t.Fatalf("ref defaulted although commit pinned: %q", p.Spec.Source.Ref)
	}
	dk := &Deployment{Spec: DeploymentSpec{Runtime: RuntimeDocker}}
	dk.Default()
	if dk.Spec.Docker == nil || dk.Spec.Docker.Dockerfile != "Dockerfile" || dk.Spec.Docker.Network != "bridge" {
		t.Fatalf("docker defaults: %+v", dk.Spec.Docker)
	}
}

func TestNodeDefaults(t *testing.T) {
	n := &Node{}
	n.Default()
	if n.Spec.Port != 22 || n.Spec.User != "bakery-agent" {
		t.Fatalf("node defaults: %+v", n.Spec)
	}
	l := &Node{Spec: NodeSpec{Local: true}}
	l.Default()
	if l.Spec.Port != 0 || l.Spec.User != "" {
		t.Fatalf("local node got SSH defaults: %+v", l.Spec)
	}
}

func TestDeploymentValidation(t *testing.T) {
	if es := validDeployment().Validate(); es != nil {
		t.Fatalf("valid deployment rejected: %v", es)
	}
	zero := 0
	tests := []struct {
		name   string
		mutate func(d *Deployment)
		want   []string
	}{
		{"port 0", func(d *Deployment) { d.Spec.Run.Port = &zero }, []string{"spec.run.port"}},
		{"bad name", func(d *Deployment) { d.Metadata.Name = "../etc" }, []string{"metadata.name"}},
		{"upper name", func(d *Deployment) { d.Metadata.Name = "Hello" }, []string{"metadata.name"}},
		{"long name", func(d *Deployment) { d.Metadata.Name = string(make([]byte, 64)) }, []string{"metadata.name"}},
		{"wrong apiVersion", func(d *Deployment) { d.APIVersion = "v1" }, []string{"apiVersion"}},
		{"no repo", func(d *Deployment) { d.Spec.Source.Repo = "" }, []string{"spec.source.repo"}},
		{"option repo", func(d *Deployment) { d.Spec.Source.Repo = "--upload-pack=x" }, []string{"spec.source.repo"}},
		{"bad ref", func(d *Deployment) { d.Spec.Source.Ref = "a..b" }, []string{"spec.source.ref"}},
		{"bad commit", func(d *Deployment) { d.Spec.Source.Commit = "abc" }, []string{"spec.source.commit"}},
		{"no nodes", func(d *Deployment) { d.Spec.Nodes = nil }, []string{"spec.nodes"}},
		{"dup node", func(d *Deployment) { d.Spec.Nodes = []string{"a", "a"} }, []string{"spec.nodes[1]"}},
		{"no command", func(d *Deployment) { d.Spec.Run.Command = "" }, []string{"spec.run.command"}},
		{"bad runtime", func(d *Deployment) { d.Spec.Runtime = "lxc" }, []string{"spec.runtime"}},
		{"env name", func(d *Deployment) { d.Spec.Run.Env[0].Name = "1X" }, []string{"spec.run.env[0].name"}},
		{"env PORT", func(d *Deployment) { d.Spec.Run.Env[0].Name = "PORT" }, []string{"spec.run.env[0].name"}},
		{"health path", func(d *Deployment) { d.Spec.HealthCheck.Path = "healthz" }, []string{"spec.healthCheck.path"}},
		{"health timeout", func(d *Deployment) { d.Spec.HealthCheck.Timeout = &Duration{-1} }, []string{"spec.healthCheck.timeout"}},
		{"bad host", func(d *Deployment) { d.Spec.Ingress.Hosts = []string{"a b"} }, []string{"spec.ingress.hosts[0]"}},
		{"tls email", func(d *Deployment) { d.Spec.Ingress.TLS = &TLS{Email: "x"} }, []string{"spec.ingress.tls.email"}},
		{"tls email shell", func(d *Deployment) { d.Spec.Ingress.TLS = &TLS{Email: "a$(id)@b.example"} }, []string{"spec.ingress.tls.email"}},
		{"tls email option", func(d *Deployment) { d.Spec.Ingress.TLS = &TLS{Email: "--config-dir=/tmp@b.example"} }, []string{"spec.ingress.tls.email"}},
		{"tls email quote", func(d *Deployment) { d.Spec.Ingress.TLS = &TLS{Email: "a;b@c.example"} }, []string{"spec.ingress.tls.email"}},
		{"tls ok", func(d *Deployment) {
			d.Spec.Ingress.TLS = &TLS{Email: "ops+tls@example.com", Server: "https://pebble:14000/dir"}
		}, []string{}},
		{"proxy ok", func(d *Deployment) {
			f := false
			d.Spec.Ingress.Proxy = &Proxy{WebSockets: &f, Buffering: &f, ClientMaxBodySize: "20m", ReadTimeout: &Duration{time.Hour}, SendTimeout: &Duration{time.Minute},
				Headers: map[string]string{"X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'self'"}}
			d.Spec.Ingress.Redirects = []Redirect{{From: "www.example.com", To: "example.com"}}
			d.Spec.Ingress.Maintenance = &Maintenance{Enabled: true, Message: "Back at 10:00 UTC."}
		}, []string{}},
		{"proxy body size", func(d *Deployment) { d.Spec.Ingress.Proxy = &Proxy{ClientMaxBodySize: "20MB"} }, []string{"spec.ingress.proxy.clientMaxBodySize"}},
		{"proxy timeouts", func(d *Deployment) {
			d.Spec.Ingress.Proxy = &Proxy{ReadTimeout: &Duration{1500 * time.Millisecond}, SendTimeout: &Duration{48 * time.Hour}}
		}, []string{"spec.ingress.proxy.readTimeout", "spec.ingress.proxy.sendTimeout"}},
		{"proxy header name", func(d *Deployment) { d.Spec.Ingress.Proxy = &Proxy{Headers: map[string]string{"X A": "v"}} }, []string{`spec.ingress.proxy.headers["X A"]`}},
		{"proxy header bakery", func(d *Deployment) { d.Spec.Ingress.Proxy = &Proxy{Headers: map[string]string{"X-Bakery-Slot": "v"}} }, []string{`spec.ingress.proxy.headers["X-Bakery-Slot"]`}},
		{"proxy header hsts", func(d *Deployment) {
			d.Spec.Ingress.Proxy = &Proxy{Headers: map[string]string{"strict-transport-security": "max-age=1"}}
		}, []string{`spec.ingress.proxy.headers["strict-transport-security"]`}},
		{"proxy header duplicate", func(d *Deployment) { d.Spec.Ingress.Proxy = &Proxy{Headers: map[string]string{"X-A": "1", "x-a": "2"}} }, []string{`spec.ingress.proxy.headers["x-a"]`}},
		{"proxy header injection", func(d *Deployment) {
			d.Spec.Ingress.Proxy = &Proxy{Headers: map[string]string{"X-A": `v" always; include /etc/shadow; #`, "X-B": "$host", "X-C": "a\nb", "X-D": ""}}
		}, []string{`spec.ingress.proxy.headers["X-A"]`, `spec.ingress.proxy.headers["X-B"]`, `spec.ingress.proxy.headers["X-C"]`, `spec.ingress.proxy.headers["X-D"]`}},
		{"redirect hosts", func(d *Deployment) {
			d.Spec.Ingress.Redirects = []Redirect{{From: "*.a.example", To: "a b"}, {From: d.Spec.Ingress.Hosts[0], To: "x.example"}, {From: "y.example", To: "y.example"}}
		}, []string{"spec.ingress.redirects[0].from", "spec.ingress.redirects[0].to", "spec.ingress.redirects[1].from", "spec.ingress.redirects[2].to"}},
		{"maintenance message", func(d *Deployment) {
			d.Spec.Ingress.Maintenance = &Maintenance{Enabled: true, Message: `ok"; } server { return 200 "x`}
		}, []string{"spec.ingress.maintenance.message"}},
		{"tls no hosts", func(d *Deployment) { d.Spec.Ingress = &Ingress{TLS: &TLS{Email: "ops@example.com"}} }, []string{"spec.ingress.tls"}},
		{"tls wildcard", func(d *Deployment) {
			d.Spec.Ingress.Hosts = []string{"*.example.test"}
			d.Spec.Ingress.TLS = &TLS{Email: "ops@example.com"}
		}, []string{"spec.ingress.hosts[0]"}},
		{"tls single label", func(d *Deployment) {
			d.Spec.Ingress.Hosts = []string{"hello.example.test", "localhost"}
			d.Spec.Ingress.TLS = &TLS{Email: "ops@example.com"}
		}, []string{"spec.ingress.hosts[1]"}},
		{"tls numeric tld", func(d *Deployment) {
			d.Spec.Ingress.Hosts = []string{"10.0.0.1"}
			d.Spec.Ingress.TLS = &TLS{Email: "ops@example.com"}
		}, []string{"spec.ingress.hosts[0]"}},
		{"tls server http", func(d *Deployment) { d.Spec.Ingress.TLS = &TLS{Email: "a@b.example", Server: "http://x/dir"} }, []string{"spec.ingress.tls.server"}},
		{"tls server query", func(d *Deployment) { d.Spec.Ingress.TLS = &TLS{Email: "a@b.example", Server: "https://x/dir?a=$(id)"} }, []string{"spec.ingress.tls.server"}},
		{"keep releases", func(d *Deployment) { d.Spec.KeepReleases = -1 }, []string{"spec.keepReleases"}},
		{"max parallel", func(d *Deployment) { d.Spec.Strategy.MaxParallel = -1 }, []string{"spec.strategy.maxParallel"}},
		{"all at once", func(d *Deployment) {
			d.Spec.Run.Port = &zero
			d.Spec.Source.Repo = ""
			d.Metadata.Name = "X"
		}, []string{"metadata.name", "spec.source.repo", "spec.run.port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := validDeployment()
			tc.mutate(d)
			if diff := cmp.Diff(tc.want, fields(d.Validate())); diff != "" {
				t.Fatalf("field paths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeValidation(t *testing.T) {
	valid := func() *Node {
		n := &Node{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindNode}, Metadata: ObjectMeta{Name: "web-1"}, Spec: NodeSpec{Address: "10.77.0.11"}}
		n.Default()
		return n
	}
	if es := valid().Validate(); es != nil {
		t.Fatalf("valid node rejected: %v", es)
	}
	tests := []struct {
		name   string
		mutate func(n *Node)
		want   []string
	}{
		{"no address", func(n *Node) { n.Spec.Address = "" }, []string{"spec.address"}},
		{"bad address", func(n *Node) { n.Spec.Address = "a;b" }, []string{"spec.address"}},
		{"port", func(n *Node) { n.Spec.Port = 70000 }, []string{"spec.port"}},
		{"user", func(n *Node) { n.Spec.User = "root;x" }, []string{"spec.user"}},
		{"host key", func(n *Node) { n.Spec.HostKey = "garbage" }, []string{"spec.hostKey"}},
		{"via self", func(n *Node) { n.Spec.Via = "web-1" }, []string{"spec.via"}},
		{"kind", func(n *Node) { n.Kind = "Deployment" }, []string{"kind"}},
		{"label", func(n *Node) { n.Metadata.Labels = map[string]string{"role": "a b"} }, []string{"metadata.labels.role"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := valid()
			tc.mutate(n)
			if diff := cmp.Diff(tc.want, fields(n.Validate())); diff != "" {
				t.Fatalf("field paths (-want +got):\n%s", diff)
			}
		})
	}
	local := &Node{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindNode}, Metadata: ObjectMeta{Name: "me"}, Spec: NodeSpec{Local: true}}
	local.Default()
	if es := local.Validate(); es != nil {
		t.Fatalf("local node rejected: %v", es)
	}
}

func TestSelector(t *testing.T) {
	labels := map[string]string{"role": "web", "zone": "a"}
	for _, tc := range []struct {
		sel  string
		want bool
	}{
		{"", true}, {"role=web", true}, {"role==web", true}, {"role=db", false}, {"role!=db", true},
		{"role,zone", true}, {"!old", true}, {"!role", false}, {"role=web,zone=b", false},
	} {
		s, err := ParseSelector(tc.sel)
		if err != nil {
			t.Fatalf("%q: %v", tc.sel, err)
		}
		if got := s.Matches(labels); got != tc.want {
			t.Errorf("%q matches = %v, want %v", tc.sel, got, tc.want)
		}
		if again, err := ParseSelector(s.String()); err != nil || again.String() != s.String() {
			t.Errorf("%q does not round-trip: %q %v", tc.sel, s.String(), err)
		}
	}
	if _, err := ParseSelector("a b=c"); err == nil {
		t.Fatal("invalid selector accepted")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	d := validDeployment()
	d.Metadata.CreationTimestamp = NewTime(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))
	SetCondition(&d.Status.Conditions, Condition{Type: ConditionReady, Status: ConditionTrue, Reason: "Converged"})
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Deployment
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, &back); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if c := d.DeepCopyObject().(*Deployment); !cmp.Equal(c, d) {
		t.Fatal("deep copy differs")
	}
	var dur Duration
	if err := json.Unmarshal([]byte(`5`), &dur); err == nil {
		t.Fatal("number accepted as duration")
	}
	if err := json.Unmarshal([]byte(`"90s"`), &dur); err != nil || dur.Duration != 90*time.Second {
		t.Fatalf("duration: %v %v", dur, err)
	}
}

func TestSetConditionKeepsTransitionTime(t *testing.T) {
	var conds []Condition
	t0 := NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	SetCondition(&conds, Condition{Type: ConditionReady, Status: ConditionFalse, LastTransitionTime: t0})
	SetCondition(&conds, Condition{Type: ConditionReady, Status: ConditionFalse, Reason: "Still"})
	if !conds[0].LastTransitionTime.Equal(t0.Time) || conds[0].Reason != "Still" {
		t.Fatalf("same status must keep the transition time: %+v", conds[0])
	}
	SetCondition(&conds, Condition{Type: ConditionReady, Status: ConditionTrue})
	if conds[0].LastTransitionTime.Equal(t0.Time) {
		t.Fatal("status change must move the transition time")
	}
	if !IsTrue(conds, ConditionReady) || len(conds) != 1 {
		t.Fatalf("conditions: %+v", conds)
	}
}

package scripts_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/scripts"
)

// helperScript writes the node's bakery-sudo helper, as the installer
// embeds it, to a file and returns its path.
func helperScript(t testing.TB) string {
	t.Helper()
	s := string(scripts.InstallNodeAgent)
	const start, end = "<<'BAKERY_SUDO_EOF'\n", "\nBAKERY_SUDO_EOF\n"
	i := strings.Index(s, start)
	j := strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("the bakery-sudo helper is not in install-node-agent.sh")
	}
	p := filepath.Join(t.TempDir(), "bakery-sudo")
	if err := os.WriteFile(p, []byte(s[i+len(start):j+1]), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runHelper runs one verb of the helper (one that needs no root) and
// returns its stdout, and its exit code.
func runHelper(t testing.TB, helper string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{helper}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("bash %s: %v", strings.Join(args, " "), err)
	return "", -1
}

const rel = "0123456789abcdef0123456789abcdef01234567-89abcdef01234567"

// Slots and Sites on which the helper's templates and the control plane's
// must agree byte for byte (nodefiles.Unit and NginxSite are what the
// control plane compares the node's files with).
var (
	paritySlots = []nf.Slot{
		{App: "hello", Slot: nf.Blue, Release: rel, Port: 20000},
		{App: "x", Slot: nf.Green, Release: rel[:40], Port: 65535, StopTimeoutSec: 86400},
		{App: strings.Repeat("a1-", 20) + "end", Slot: nf.Blue, Release: strings.Repeat("f", 64) + "-0000000000000000", Port: 1, StopTimeoutSec: 1},
		{App: "exactly-twenty-chars", Slot: nf.Green, Release: rel, Port: 8080},
		{App: "exactly-twenty-one-ch", Slot: nf.Green, Release: rel, Port: 8080},
		{App: "data", Slot: nf.Blue, Release: rel, Port: 20002, Limits: nf.Limits{Persistent: []string{"uploads", "var/db", "a_b-c.d"}, MemoryBytes: 268435456, CPUMilli: 500, Tasks: 64}},
		{App: "data", Slot: nf.Green, Release: rel, Port: 20002, StopTimeoutSec: 30, Limits: nf.Limits{CPUMilli: 2010}},
		{App: "data", Slot: nf.Green, Release: rel, Port: 20002, Limits: nf.Limits{Persistent: []string{"x"}}},
		{App: "data", Slot: nf.Green, Release: rel, Port: 20002, Limits: nf.Limits{MemoryBytes: api.MaxMemory, CPUMilli: 10, Tasks: 1}},
	}
	parityProcs = []nf.Process{
		{App: "hello", Slot: nf.Blue, Name: "worker", Release: rel},
		{App: "x", Slot: nf.Green, Name: "email-sender", Release: rel[:40], StopTimeoutSec: 86400},
		{App: strings.Repeat("a1-", 20) + "end", Slot: nf.Blue, Name: strings.Repeat("w", 20), Release: strings.Repeat("f", 64) + "-0000000000000000", StopTimeoutSec: 1},
		{App: "exactly-twenty-one-ch", Slot: nf.Green, Name: "bluebird", Release: rel, StopTimeoutSec: 30},
		{App: "data", Slot: nf.Blue, Name: "worker", Release: rel, Limits: nf.Limits{Persistent: []string{"uploads", "var/db"}, MemoryBytes: 8 << 20, CPUMilli: 1000, Tasks: 1000000}},
	}
	paritySites = []nf.Site{
		{App: "hello", Slot: nf.Blue, Port: 20000},
		{App: "hello", Slot: nf.Blue, Hosts: []string{"a.example.test"}, Port: 20000},
		{App: "web", Slot: nf.Green, Hosts: []string{"a.example.test", "*.b.example.test", "localhost"}, Port: 20001, ListenPort: 8080},
		{App: "web", Slot: nf.Green, Hosts: []string{"a.example.test", "b.example.test"}, Port: 20001, TLS: true},
		{App: "web", Slot: nf.Green, Hosts: []string{"a.example.test", "b.example.test"}, Port: 20001, TLS: true, CertHosts: []string{"b.example.test"}},
		{App: "web", Slot: nf.Blue, Hosts: []string{"a.example.test", "b.example.test"}, Port: 1, TLS: true, CertHosts: []string{"b.example.test", "a.example.test"}, TLSPort: 8443, ListenPort: 8080},
		{App: "web", Slot: nf.Blue, Hosts: []string{"a.example.test"}, Port: 2, CertHosts: []string{"a.example.test"}}, // certificates without TLS: ignored
		{App: "web", Slot: nf.Blue, Port: 2, NoWebSockets: true},
		{App: "my-app", Slot: nf.Green, Hosts: []string{"example.test", "b.example.test"}, Port: 20001, TLS: true, CertHosts: []string{"example.test"}, HSTS: true,
			NoBuffering: true, BodySize: "20m", ReadTimeout: 3600, SendTimeout: 120,
			Headers:   []nf.Header{{Name: "X-Frame-Options", Value: "DENY"}, {Name: "Content-Security-Policy", Value: "default-src 'self' https://a.test #x"}},
			Redirects: []api.Redirect{{From: "www.example.test", To: "example.test"}, {From: "www.b.example.test", To: "b.example.test"}}},
		{App: "my-app", Slot: nf.Blue, Hosts: []string{"example.test"}, Port: 20001, TLS: true, CertHosts: []string{"example.test"}, TLSPort: 8443, ListenPort: 8080,
			Redirects:   []api.Redirect{{From: "www.example.test", To: "example.test"}, {From: "old.test", To: "other.test"}},
			Maintenance: "Down for maintenance: back at 10:00 UTC (sorry!) ~|^_`[]<>?@&%*+=", Headers: []nf.Header{{Name: "X-A", Value: " "}}},
		{App: "hello", Slot: nf.Blue, Port: 1, Maintenance: "m", NoWebSockets: true, HSTS: true},
	}
)

// paritySchedules: the helper's render-sched and nodefiles.SchedTimer +
// SchedService must agree byte for byte.
var paritySchedules = []nf.Sched{
	{App: "hello", Name: "tick", Slot: nf.Blue, Release: rel, TimeoutSec: 3600, Concurrency: "Forbid", Calendar: "*:*:0/5"},
	{App: "hello", Name: "nightly", Slot: nf.Green, Release: rel[:40], TimeoutSec: 1, Concurrency: "Allow", Calendar: "Mon,Tue,Wed,Thu,Fri *-*-* 08:30:00"},
	{App: "web", Name: "a-b-c-d-e-f-g-h-i-j0", Slot: nf.Blue, Release: rel, TimeoutSec: 86400, Concurrency: "Forbid", Docker: true, Calendar: "hourly"},
	{App: "web", Name: "x", Slot: nf.Green, Release: rel, TimeoutSec: 60, Concurrency: "Allow", Docker: true, Calendar: "*-*-01 00:00:00 UTC"},
	{App: "exactly-twenty-one-ch", Name: "x", Slot: nf.Green, Release: rel, TimeoutSec: 60, Concurrency: "Forbid", Calendar: "daily"},
	{App: "data", Name: "backup", Slot: nf.Blue, Release: rel, TimeoutSec: 60, Concurrency: "Forbid", Calendar: "daily", Limits: nf.Limits{Persistent: []string{"uploads"}, MemoryBytes: 1 << 30, CPUMilli: 250, Tasks: 10}},
	{App: "data", Name: "backup", Slot: nf.Blue, Release: rel, TimeoutSec: 60, Concurrency: "Allow", Calendar: "daily", Limits: nf.Limits{Persistent: []string{"uploads"}, Tasks: 10}},
	{App: "data", Name: "backup", Slot: nf.Blue, Release: rel, TimeoutSec: 60, Concurrency: "Forbid", Docker: true, Calendar: "daily", Limits: nf.Limits{MemoryBytes: 1 << 30, CPUMilli: 1500, Tasks: 10}},
	{App: "data", Name: "backup", Slot: nf.Blue, Release: rel, TimeoutSec: 60, Concurrency: "Allow", Docker: true, Calendar: "daily", Limits: nf.Limits{CPUMilli: 20}},
}

// TestHelperRendersLikeControlPlane runs the helper's render-unit and
// render-site on a table of parameters and compares their output with the
// control plane's rendering.
func TestHelperRendersLikeControlPlane(t *testing.T) {
	helper := helperScript(t)
	for _, s := range paritySlots {
		if err := s.Validate(); err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		got, code := runHelper(t, helper, append([]string{"render-unit"}, nf.UnitArgs(s)...)...)
		if want := nf.Unit(s); code != 0 || got != want {
			t.Errorf("render-unit %v (exit %d):\n%s\nwant (nodefiles.Unit):\n%s", nf.UnitArgs(s), code, got, want)
		}
	}
	for _, p := range parityProcs {
		if err := p.Validate(); err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		got, code := runHelper(t, helper, append([]string{"render-proc"}, nf.ProcArgs(p)...)...)
		if want := nf.ProcUnit(p); code != 0 || got != want {
			t.Errorf("render-proc %v (exit %d):\n%s\nwant (nodefiles.ProcUnit):\n%s", nf.ProcArgs(p), code, got, want)
		}
	}
	for _, s := range paritySchedules {
		if err := s.Validate(); err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		got, code := runHelper(t, helper, append([]string{"render-sched"}, nf.SchedArgs(s)...)...)
		if want := nf.SchedTimer(s) + nf.SchedService(s); code != 0 || got != want {
			t.Errorf("render-sched %v (exit %d):\n%s\nwant (nodefiles.SchedTimer + SchedService):\n%s", nf.SchedArgs(s), code, got, want)
		}
	}
	for _, s := range paritySites {
		if err := s.Validate(); err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		got, code := runHelper(t, helper, append([]string{"render-site"}, nf.SiteArgs(s)...)...)
		if want := nf.NginxSite(s); code != 0 || got != want {
			t.Errorf("render-site %v (exit %d):\n%s\nwant (nodefiles.NginxSite):\n%s", nf.SiteArgs(s), code, got, want)
		}
	}
}

// paramCase is one case of testdata/privilege/params.json.
type paramCase struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
	Valid bool   `json:"valid"`
	Why   string `json:"why,omitempty"`
}

// TestHelperRulesAgree runs one table of parameter values against the
// control plane's rules (nodefiles.ValidateParam: package api and
// nodefiles) and the helper's (check KIND VALUE): both must accept exactly
// the valid ones. This is how the two places of each rule stay in
// agreement.
func TestHelperRulesAgree(t *testing.T) {
	b, err := os.ReadFile("testdata/privilege/params.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []paramCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	helper := helperScript(t)
	for _, c := range cases {
		if r := nf.ValidateParam(c.Kind, c.Value); (r == "") != c.Valid {
			t.Errorf("Go: %s %q: valid=%v, want %v (%s)", c.Kind, c.Value, r == "", c.Valid, r)
		}
		if strings.ContainsRune(c.Value, 0) {
			continue // no argument can hold a NUL: the helper never sees one
		}
		_, code := runHelper(t, helper, "check", c.Kind, c.Value)
		if (code == 0) != c.Valid || (code != 0 && code != 2) {
			t.Errorf("helper: check %s %q: exit %d, want valid=%v", c.Kind, c.Value, code, c.Valid)
		}
	}
}

// TestHelperRefusesHostileArguments: the verbs that write refuse every
// hostile parameter of the corpus before anything else (they exit 2 even
// without root, as the check comes first).
func TestHelperRefusesHostileArguments(t *testing.T) {
	helper := helperScript(t)
	for _, args := range [][]string{
		{"render-unit", "hello", "blue", "20000", rel, "10\nUser=root"},
		{"render-unit", "hello", "blue", "20000\nExecStartPre=+/bin/sh", rel},
		{"render-unit", "hello", "blue", "20000", "../../../../root"},
		{"render-unit", "hello", "red", "20000", rel},
		{"render-unit", "hello", "blue", "20000", rel, "10", "extra"},
		{"render-proc", "hello", "blue", "w\nUser=root", rel},
		{"render-proc", "hello", "blue", "a-blue", rel},
		{"render-proc", "hello", "blue", "w", rel, "10\nExecStartPre=+/bin/sh"},
		{"render-proc", "hello", "blue", "w", "../../../../root"},
		{"render-proc", "hello", "blue", "w%h", rel},
		{"render-proc", "hello", "blue", "w", rel, "10", "extra"},
		{"proc-scale", "hello", "blue", "w", "100"},
		{"proc-scale", "hello", "blue", "w", "1;reboot"},
		{"proc-remove", "hello", "blue", "w@1"},
		{"journal", "hello", "blue", "200", "--process", "w*"},
		{"journal", "hello", "blue", "200", "--process", "../w"},
		{"render-site", "hello", "blue", "20000", "--host", "a.example.test;} access_log /root/.ssh/authorized_keys k;"},
		{"render-site", "hello", "blue", "20000", "--host", "ok#"},
		{"render-site", "hello", "blue", "20000", "--tls", "--host", "a.example.test", "--cert", "b.example.test"},
		{"render-site", "hello", "blue", "20000", "--include", "/etc/shadow"},
		{"render-site", "hello", "blue", "0"},
		{"render-site", "hello", "blue", "1", "--header", "X-A", "diIgYWx3YXlzOyBpbmNsdWRlIC9ldGMvc2hhZG93OyAj"}, // v" always; include /etc/shadow; #
		{"render-site", "hello", "blue", "1", "--header", "X-A", "JGhvc3Q="},                                     // $host
		{"render-site", "hello", "blue", "1", "--header", "X-A", "YQBi"},                                         // a NUL b
		{"render-site", "hello", "blue", "1", "--header", "X-A", "YQpi"},                                         // a LF b
		{"render-site", "hello", "blue", "1", "--header", "X-A", "not base64!"},
		{"render-site", "hello", "blue", "1", "--header", "X-A", "YWI"}, // not canonical
		{"render-site", "hello", "blue", "1", "--header", "X-A;", "YQ=="},
		{"render-site", "hello", "blue", "1", "--header", "X-Bakery-Slot", "YQ=="},
		{"render-site", "hello", "blue", "1", "--header", "X-A", "YQ==", "--header", "x-a", "Yg=="},
		{"render-site", "hello", "blue", "1", "--header", "Strict-Transport-Security", "YQ=="},
		{"render-site", "hello", "blue", "1", "--header", "X-A"},
		{"render-site", "hello", "blue", "1", "--maintenance", "b2siOyB9IHNlcnZlciB7IGxpc3RlbiA4MTsgcmV0dXJuIDIwMCAieA=="}, // ok"; } server { ...
		{"render-site", "hello", "blue", "1", "--maintenance", ""},
		{"render-site", "hello", "blue", "1", "--body-size", "1m; include /etc/shadow"},
		{"render-site", "hello", "blue", "1", "--read-timeout", "0"},
		{"render-site", "hello", "blue", "1", "--redirect", "a.test", "b.test;"},
		{"render-site", "hello", "blue", "1", "--redirect", "*.a.test", "b.test"},
		{"render-site", "hello", "blue", "1", "--host", "a.test", "--redirect", "a.test", "b.test"},
		{"render-site", "hello", "blue", "1", "--redirect", "hello", "b.test"},
		{"render-site", "hello", "blue", "1", "--redirect", "a.test", "b.test", "--redirect", "a.test", "c.test"},
		{"render-sched", "hello", "tick", "blue", rel, "60", "Forbid", "systemd", "*:*:0/5\nExecStartPre=+/bin/sh -c id"},
		{"render-sched", "hello", "tick", "blue", rel, "60", "Forbid", "systemd", "*:*:0/5 ; id"},
		{"render-sched", "hello", "tick", "blue", rel, "60", "Forbid", "systemd", "%h"},
		{"render-sched", "hello", "tick", "blue", rel, "60", "Forbid", "systemd", "$(id)"},
		{"render-sched", "hello", "tick", "blue", rel, "60", "Forbid", "systemd", "no such calendar"},
		{"render-sched", "hello", "tick\nUser=root", "blue", rel, "60", "Forbid", "systemd", "hourly"},
		{"render-sched", "hello", "tick", "blue", rel, "60", "Never", "systemd", "hourly"},
		{"render-sched", "hello", "tick", "blue", rel, "60", "Forbid", "podman", "hourly"},
		{"render-sched", "hello", "tick", "blue", rel, "0", "Forbid", "systemd", "hourly"},
		{"render-sched", "hello", "tick", "blue", rel, "60", "Forbid", "systemd"},
		{"render-unit", "hello", "blue", "20000", rel, "10", "--persist", "../etc"},
		{"render-unit", "hello", "blue", "20000", rel, "10", "--persist", "/etc"},
		{"render-unit", "hello", "blue", "20000", rel, "10", "--persist", "a/../../etc"},
		{"render-unit", "hello", "blue", "20000", rel, "10", "--persist", "a:/etc"},
		{"render-unit", "hello", "blue", "20000", rel, "10", "--persist", "a\nUser=root"},
		{"render-unit", "hello", "blue", "20000", rel, "10", "--persist", ".git"},
		{"render-unit", "hello", "blue", "20000", rel, "10", "--persist", "a", "--persist", "a/b"},
		{"render-unit", "hello", "blue", "20000", rel, "10", "--persist"},
		{"render-unit", "hello", "blue", "20000", rel, "--memory", "1G"},
		{"render-unit", "hello", "blue", "20000", rel, "--memory", "100"},
		{"render-unit", "hello", "blue", "20000", rel, "--cpu", "505"},
		{"render-unit", "hello", "blue", "20000", rel, "--cpu", "0"},
		{"render-unit", "hello", "blue", "20000", rel, "--tasks", "1\nUser=root"},
		{"render-unit", "hello", "blue", "20000", rel, "--user", "root"},
		{"render-proc", "hello", "blue", "w", rel, "10", "--persist", "a%h"},
		{"render-sched", "hello", "tick", "blue", rel, "60", "Forbid", "docker", "hourly", "--persist", "a"},
		{"render-sched", "hello", "tick", "blue", rel, "60", "Forbid", "systemd", "hourly", "--memory", "$(id)"},
	} {
		if out, code := runHelper(t, helper, args...); code != 2 || out != "" {
			t.Errorf("%q: exit %d, output %q; want refused (2) and nothing rendered", args, code, out)
		}
	}
}

package nodescript

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

// fakeTool stands in for sudo, docker, curl and systemctl, which the
// scripts need root, a daemon or a network service for: it records its
// name and arguments (one per line, then "--") in calls next to it, and
// what an installing helper command reads on stdin in stdin, then answers
// like the real tool would for the happy path.
const fakeTool = `#!/bin/sh
d=$(dirname "$0")
n=$(basename "$0")
{ echo "$n"; for a in "$@"; do printf '%s\n' "$a"; done; echo --; } >>"$d/calls"
case $n in
sudo)
  case $3 in
  env-install) cat >"$d/stdin" ;;
  nginx-site-install) echo changed ;;
  build) cd "$BAKERY_ROOT/apps/$4/releases/$5" && tee "$d/stdin" | sh -s; exit $? ;; # as the app's user, on a node
  nginx-site-remove) echo removed ;;
  cert-info) shift 3; for h in "$@"; do echo "cert $h 1803533847 4BB424659C012AA1"; done ;;
  esac ;;
curl)
  case "$*" in
  *http_code*) printf '\n200\n' ;; # health: the status code
  *) printf 'HTTP/1.1 200 OK\r\nX-Bakery-Slot: %s/%s\r\nX-Bakery-Site: %s\r\n%s: 1\r\n' "$APP" "$SLOT" "$TOKEN" "$HDR" ;;
  esac ;;
docker)
  case "$1 $2" in
  "inspect --format") echo true ;;
  esac ;;
systemctl) echo inactive ;;
esac
exit 0
`

// fakeBin puts the fake tools first on PATH (for the local executor,
// which passes PATH on) and returns their directory.
func fakeBin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"sudo", "docker", "curl", "systemctl"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(fakeTool), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return dir
}

// hostile is an app name a shell would run code from if it were spliced
// into a script: it must reach every tool as one literal argument.
const hostile = `a'b$(touch pwned)"c d`

// TestScriptsPassValuesLiterally runs every script that needs root, a
// daemon or the network against the fake tools, with a hostile app name,
// and compares the tools' argument lists with what the old inline scripts
// ran.
func TestScriptsPassValuesLiterally(t *testing.T) {
	const h = nf.SudoHelper
	commit := strings.Repeat("c", 40)
	release := strings.Repeat("d", 40) + "-0123456789abcdef"
	tests := []struct {
		name      string
		cmd       func() (sshexec.Command, error)
		calls     []string // one entry per call: tool and arguments, space-joined
		stdin     string
		wantOut   string
		wantError bool
	}{
		{"systemd-install-env", func() (sshexec.Command, error) {
			return SystemdInstallEnv.Command(SystemdEnvInput{App: hostile, Slot: "blue", EnvFile: "A=\"1\"\n"})
		}, []string{"sudo -n " + h + " env-install " + hostile + " blue"}, "A=\"1\"\n", "", false},
		// The helper renders unit and site from validated parameters: a
		// hostile app name never gets that far (TestRejectsInvalid).
		{"systemd-install-unit", func() (sshexec.Command, error) {
			return SystemdInstallUnit.Command(SystemdUnitInput{Unit: nf.Slot{App: "web", Slot: "green", Port: 20001, Release: release}})
		}, []string{"sudo -n " + h + " unit-install web green 20001 " + release + " 10", "sudo -n " + h + " daemon-reload"}, "", "", false},
		{"systemd-start", func() (sshexec.Command, error) { return SystemdStart.Command(SlotInput{App: hostile, Slot: "blue"}) }, []string{
			"sudo -n " + h + " systemctl reset-failed " + hostile + " blue",
			"sudo -n " + h + " systemctl enable " + hostile + " blue",
			"sudo -n " + h + " systemctl restart " + hostile + " blue"}, "", "", false},
		{"systemd-stop", func() (sshexec.Command, error) { return SystemdStop.Command(SlotInput{App: hostile, Slot: "blue"}) }, []string{
			"sudo -n " + h + " systemctl disable " + hostile + " blue",
			"sudo -n " + h + " systemctl stop " + hostile + " blue"}, "", "", false},
		{"systemd-remove", func() (sshexec.Command, error) { return SystemdRemove.Command(RemoveInput{App: hostile}) }, []string{
			"sudo -n " + h + " proc-remove " + hostile + " blue",
			"sudo -n " + h + " systemctl disable " + hostile + " blue",
			"sudo -n " + h + " systemctl stop " + hostile + " blue",
			"sudo -n " + h + " unit-remove " + hostile + " blue",
			"sudo -n " + h + " env-remove " + hostile + " blue",
			"sudo -n " + h + " proc-remove " + hostile + " green",
			"sudo -n " + h + " systemctl disable " + hostile + " green",
			"sudo -n " + h + " systemctl stop " + hostile + " green",
			"sudo -n " + h + " unit-remove " + hostile + " green",
			"sudo -n " + h + " env-remove " + hostile + " green",
			"sudo -n " + h + " daemon-reload",
			"sudo -n " + h + " app-remove " + hostile + " --keep-data"}, "", "", false},
		{"nginx-switch", func() (sshexec.Command, error) {
			return NginxSwitch.Command(NginxSwitchInput{App: "web", Slot: "green", Hosts: []string{"a.test", "b.test"}, Path: "/healthz", Token: "tok",
				Site: nf.Site{App: "web", Slot: "green", Port: 20001, Hosts: []string{"a.test", "*.b.test"}, TLS: true, CertHosts: []string{"a.test"}}})
		}, []string{
			"sudo -n " + h + " nginx-site-install web green 20001 --tls --host a.test --host *.b.test --cert a.test",
			"sudo -n " + h + " nginx-reload",
			"curl -s -k -o /dev/null -D - -m 2 --resolve a.test:443:127.0.0.1 https://a.test/healthz",
			"curl -s -k -o /dev/null -D - -m 2 --resolve b.test:443:127.0.0.1 https://b.test/healthz"},
			"", "changed\nbakery: nginx now serves from the green slot\n", false},
		{"nginx-switch over HTTP", func() (sshexec.Command, error) {
			return NginxSwitch.Command(NginxSwitchInput{App: "web", Slot: "blue", Hosts: []string{"web"}, Path: "/", Site: nf.Site{App: "web", Slot: "blue", Port: 20000}})
		}, []string{
			"sudo -n " + h + " nginx-site-install web blue 20000",
			"sudo -n " + h + " nginx-reload",
			"curl -s -o /dev/null -D - -m 2 -H Host: web http://127.0.0.1:80/"},
			"", "changed\nbakery: nginx now serves from the blue slot\n", false},
		{"nginx-remove", func() (sshexec.Command, error) { return NginxRemove.Command(AppInput{App: hostile}) }, []string{
			"sudo -n " + h + " nginx-site-remove " + hostile,
			"sudo -n " + h + " nginx-reload"}, "", "", false},
		{"certificate", func() (sshexec.Command, error) {
			return Certificate.Command(CertificateInput{App: "web", Host: "a.test", Email: "me@a.test", Server: "https://acme.test/dir",
				Site: nf.Site{App: "web", Slot: "blue", Port: 20000, Hosts: []string{"a.test"}, TLS: true}})
		}, []string{
			"sudo -n " + h + " nginx-site-install web blue 20000 --tls --host a.test",
			"sudo -n " + h + " nginx-reload",
			"curl -s -o /dev/null -D - -m 2 -H Host: a.test http://127.0.0.1:80/.well-known/acme-challenge/bakery-probe",
			"sudo -n " + h + " certbot-certonly a.test --email me@a.test --server https://acme.test/dir",
			"sudo -n " + h + " cert-info a.test"},
			"", "bakery: requesting a certificate for a.test from https://acme.test/dir (HTTP-01)\ncert a.test 1803533847 4BB424659C012AA1\n", false},
		{"renew", func() (sshexec.Command, error) {
			return Renew.Command(RenewInput{Host: "a.test", Server: "https://acme.test/dir"})
		}, []string{
			"sudo -n " + h + " certbot-renew a.test --server https://acme.test/dir --force",
			"sudo -n " + h + " nginx-test",
			"sudo -n " + h + " nginx-reload",
			"sudo -n " + h + " cert-info a.test"}, "", "cert a.test 1803533847 4BB424659C012AA1\n", false},
		{"journal", func() (sshexec.Command, error) {
			return Journal.Command(LogsInput{App: hostile, Slot: "blue", Lines: 100})
		}, []string{"sudo -n " + h + " journal " + hostile + " blue 100"}, "", "", false},
		{"journal follow", func() (sshexec.Command, error) {
			return Journal.Command(LogsInput{App: hostile, Slot: "green", Lines: 5, Follow: true})
		}, []string{"sudo -n " + h + " journal " + hostile + " green 5 follow"}, "", "", false},
		{"journal process", func() (sshexec.Command, error) {
			return Journal.Command(LogsInput{App: hostile, Slot: "green", Lines: 5, Follow: true, Process: "worker"})
		}, []string{"sudo -n " + h + " journal " + hostile + " green 5 follow --process worker"}, "", "", false},
		{"systemd-scale-procs", func() (sshexec.Command, error) {
			return SystemdScaleProcs.Command(ProcsInput{App: hostile, Slot: "blue", Procs: []Proc{{Name: "worker", Replicas: 2}, {Name: "mailer", Replicas: 1}}})
		}, []string{"sudo -n " + h + " proc-scale " + hostile + " blue worker 2", "sudo -n " + h + " proc-scale " + hostile + " blue mailer 1"}, "", "", false},
		{"systemd-procs-stop", func() (sshexec.Command, error) {
			return SystemdProcsStop.Command(ProcsInput{App: hostile, Slot: "green"})
		}, []string{"sudo -n " + h + " proc-remove " + hostile + " green", "sudo -n " + h + " daemon-reload"}, "", "", false},
		{"systemd-procs-stop some", func() (sshexec.Command, error) {
			return SystemdProcsStop.Command(ProcsInput{App: hostile, Slot: "green", Procs: []Proc{{Name: "old"}, {Name: "older"}}})
		}, []string{"sudo -n " + h + " proc-remove " + hostile + " green old", "sudo -n " + h + " proc-remove " + hostile + " green older", "sudo -n " + h + " daemon-reload"}, "", "", false},
		{"docker-logs", func() (sshexec.Command, error) {
			return DockerLogs.Command(LogsInput{App: hostile, Slot: "blue", Lines: 7})
		}, []string{"docker logs --timestamps --tail 7 bakery-" + hostile + "-blue"}, "", "", false},
		{"docker-logs follow", func() (sshexec.Command, error) {
			return DockerLogs.Command(LogsInput{App: hostile, Slot: "blue", Lines: 7, Follow: true})
		}, []string{"docker logs --timestamps --follow --tail 7 bakery-" + hostile + "-blue"}, "", "", false},
		{"docker-start", func() (sshexec.Command, error) {
			return DockerStart.Command(DockerStartInput{App: hostile, Slot: "blue", Commit: commit, Release: "rel", Revision: 3, Port: 8080,
				Network: "bridge", Command: "exec ./serve $PORT", StopTimeout: 10})
		}, []string{
			"docker rm -f bakery-" + hostile + "-blue",
			"docker run --detach --name bakery-" + hostile + "-blue --init --restart unless-stopped --stop-timeout 10" +
				" --env-file " + nf.DockerEnvPath(hostile, "blue") + " --log-opt max-size=10m --log-opt max-file=3" +
				" --label bakery.app=" + hostile + " --label bakery.slot=blue --label bakery.commit=" + commit +
				" --label bakery.release=rel --label bakery.revision=3 --publish 127.0.0.1:8080:8080 bakery/" + hostile + ":rel /bin/sh -c exec ./serve $PORT"},
			"", "bakery: started container bakery-" + hostile + "-blue from bakery/" + hostile + ":rel\n", false},
		{"docker-start host network", func() (sshexec.Command, error) {
			return DockerStart.Command(DockerStartInput{App: "web", Slot: "green", Commit: "c1", Release: "rel", Revision: 1, Port: 9000,
				Network: "host", StopTimeout: 10})
		}, []string{
			"docker rm -f bakery-web-green",
			"docker run --detach --name bakery-web-green --init --restart unless-stopped --stop-timeout 10" +
				" --env-file " + nf.DockerEnvPath("web", "green") + " --log-opt max-size=10m --log-opt max-file=3" +
				" --label bakery.app=web --label bakery.slot=green --label bakery.commit=c1" +
				" --label bakery.release=rel --label bakery.revision=1 --network host bakery/web:rel"},
			"", "bakery: started container bakery-web-green from bakery/web:rel\n", false},
		{"docker-stop", func() (sshexec.Command, error) {
			return DockerStop.Command(DockerStopInput{App: hostile, Slot: "green", StopTimeout: 10})
		}, []string{
			"docker container inspect bakery-" + hostile + "-green",
			"docker stop --time 10 bakery-" + hostile + "-green"}, "", "", false},
		{"docker-remove", func() (sshexec.Command, error) { return DockerRemove.Command(RemoveInput{App: hostile}) }, []string{
			"docker rm -f bakery-" + hostile + "-blue",
			"docker rm -f bakery-" + hostile + "-green",
			"docker ps -aq --filter label=bakery.app=" + hostile + " --filter label=bakery.process",
			"docker image ls -q bakery/" + hostile}, "", "", false},
		{"docker-procs-stop", func() (sshexec.Command, error) { return DockerProcsStop.Command(SlotInput{App: hostile, Slot: "blue"}) }, []string{
			"docker ps -q --filter label=bakery.app=" + hostile + " --filter label=bakery.slot=blue --filter label=bakery.process"}, "", "", false},
		{"docker-prune-images", func() (sshexec.Command, error) { return DockerPruneImages.Command(AppInput{App: hostile}) }, []string{
			"docker image ls --format {{.Tag}} bakery/" + hostile,
			"docker image prune --force --filter label=bakery.app=" + hostile}, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := fakeBin(t)
			root, cwd := t.TempDir(), t.TempDir()
			cmd, err := tt.cmd()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Dir = cwd
			cmd.Timeout = 20 * time.Second
			res, err := runLocal(t, cmd, root)
			if err != nil {
				t.Fatalf("%v\nstdout: %s\nstderr: %s", err, res.Stdout, res.Stderr)
			}
			got := readCalls(t, bin)
			if strings.Join(got, "\n") != strings.Join(tt.calls, "\n") {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.calls, "\n"))
			}
			stdin, _ := os.ReadFile(filepath.Join(bin, "stdin"))
			if string(stdin) != tt.stdin {
				t.Errorf("helper stdin %q, want %q", stdin, tt.stdin)
			}
			if string(res.Stdout) != tt.wantOut {
				t.Errorf("stdout %q, want %q", res.Stdout, tt.wantOut)
			}
			for _, d := range []string{cwd, bin, root} {
				if _, err := os.Stat(filepath.Join(d, "pwned")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a value was run as code (%s/pwned: %v)", d, err)
				}
			}
		})
	}
}

// TestHealth runs health against the fake curl and docker: a slot whose
// unit or container answers passes.
func TestHealth(t *testing.T) {
	bin := fakeBin(t)
	for _, in := range []HealthInput{
		{Port: 1, Path: "/healthz", Timeout: time.Second, Interval: 10 * time.Millisecond, Retries: 3, Unit: nf.UnitName(hostile, "blue")},
		{Port: 1, Path: "/healthz", Timeout: time.Second, Interval: 10 * time.Millisecond, Retries: 3, Container: nf.ContainerName(hostile, "blue")},
	} {
		os.Remove(filepath.Join(bin, "calls"))
		cmd, err := Health.Command(in)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"PORT": "1", "HPATH": "/healthz", "TIMEOUT": "1.000", "INTERVAL": "0.010", "RETRIES": "3", "GRACE": "0",
			"UNIT": in.Unit, "CONTAINER": in.Container}
		for k, v := range want {
			if cmd.Env[k] != v {
				t.Errorf("%s=%q, want %q", k, cmd.Env[k], v)
			}
		}
		out := mustRun(t, cmd, nil, "")
		if out != "bakery: health check passed: http://127.0.0.1:1/healthz answered HTTP 200\n" {
			t.Errorf("stdout %q", out)
		}
		calls := readCalls(t, bin)
		if calls[0] != "curl -sS -o /dev/null -w \\n%{http_code}\\n -m 1.000 http://127.0.0.1:1/healthz" {
			t.Errorf("calls %q", calls)
		}
		if in.Container != "" && (len(calls) != 2 || calls[1] != "docker inspect --format {{.State.Running}} "+in.Container) {
			t.Errorf("calls %q", calls)
		}
	}
}

func readCalls(t *testing.T, bin string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bin, "calls"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var calls []string
	var cur []string
	for _, l := range strings.Split(string(b), "\n") {
		if l == "--" {
			calls = append(calls, strings.Join(cur, " "))
			cur = nil
			continue
		}
		if l != "" || cur != nil {
			cur = append(cur, l)
		}
	}
	return calls
}

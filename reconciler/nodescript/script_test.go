package nodescript

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

// Every embedded file is a defined script and the other way round, and
// each is a POSIX sh script (sshexec runs it with /bin/sh).
func TestEveryFileIsAScript(t *testing.T) {
	entries, err := fs.Glob(files, "*.sh")
	if err != nil {
		t.Fatal(err)
	}
	var fromFiles []string
	for _, e := range entries {
		fromFiles = append(fromFiles, strings.TrimSuffix(e, ".sh"))
		b, _ := files.ReadFile(e)
		if !strings.HasPrefix(string(b), "#!/bin/sh\n# "+strings.TrimSuffix(e, ".sh")+" ") {
			t.Errorf("%s does not start with #!/bin/sh and a comment naming it", e)
		}
		if !strings.Contains(string(b), "\nset -u\n") && !strings.Contains(string(b), "\nset -eu\n") {
			t.Errorf("%s sets neither -u nor -eu", e)
		}
	}
	if !slices.Equal(fromFiles, Names()) {
		t.Fatalf("files %q, defined scripts %q", fromFiles, Names())
	}
}

// TestShellcheck lints the embedded scripts (make lint does too, with
// every other shell script of the project).
func TestShellcheck(t *testing.T) {
	bin, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck is not installed (scripts/install-test-deps.sh installs it)")
		}
		t.Skip("shellcheck is not installed; run scripts/install-test-deps.sh")
	}
	dir := t.TempDir()
	var args []string
	for _, n := range Names() {
		b, _ := files.ReadFile(n + ".sh")
		p := filepath.Join(dir, n+".sh")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	if out, err := exec.Command(bin, append([]string{"--shell=sh", "--format=gcc"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

func TestCommandCarriesNameRootAndSudo(t *testing.T) {
	cmd, err := SystemdStart.Command(SlotInput{App: "web", Slot: nf.Blue})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{EnvScript: "systemd-start", EnvRoot: nf.Root, EnvSudo: nf.SudoHelper, "APP": "web", "SLOT": "blue"}
	if !mapsEqual(cmd.Env, want) {
		t.Errorf("env = %q, want %q", cmd.Env, want)
	}
	if cmd.Script != SystemdStart.Text() || cmd.Stdin != nil {
		t.Errorf("script or stdin wrong: %+v", cmd)
	}
	if SystemdStart.Name != "systemd-start" || ObserveApp.Name != "observe-app" {
		t.Error("names")
	}
	// No site text travels: the helper renders it from its parameters.
	cmd, err = NginxSwitch.Command(NginxSwitchInput{App: "web", Slot: nf.Green, Site: nf.Site{App: "web", Slot: nf.Green, Port: 20001, Hosts: []string{"a.test"}}})
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Stdin != nil || cmd.Env["SITEARGS"] != "web green 20001 --host a.test" || cmd.Script != NginxSwitch.Text() {
		t.Errorf("site arguments %q, stdin %v", cmd.Env["SITEARGS"], cmd.Stdin)
	}
	// File contents (env files) travel as stdin, never in the script or
	// environment.
	cmd, err = SystemdInstallEnv.Command(SystemdEnvInput{App: "web", Slot: nf.Green, EnvFile: "A=\"secret\"\n"})
	if err != nil {
		t.Fatal(err)
	}
	if got := stdinOf(t, cmd); got != "A=\"secret\"\n" {
		t.Errorf("stdin %q", got)
	}
	for k, v := range cmd.Env {
		if strings.Contains(v, "secret") {
			t.Errorf("env file content in %s", k)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestCommandRejectsInvalidInput(t *testing.T) {
	good := strings.Repeat("ab", 20)
	tests := []struct {
		name string
		cmd  func() (sshexec.Command, error)
	}{
		{"fetch: short commit", func() (sshexec.Command, error) {
			return Fetch.Command(FetchInput{App: "web", Bundle: "/b", Commit: "abc"})
		}},
		{"fetch: option commit", func() (sshexec.Command, error) {
			return Fetch.Command(FetchInput{App: "web", Bundle: "/b", Commit: "--upload-pack=x"})
		}},
		{"fetch: relative bundle", func() (sshexec.Command, error) {
			return Fetch.Command(FetchInput{App: "web", Bundle: "-b", Commit: good})
		}},
		{"fetch: NUL in bundle", func() (sshexec.Command, error) {
			return Fetch.Command(FetchInput{App: "web", Bundle: "/b\x00", Commit: good})
		}},
		{"checkout: upper-case commit", func() (sshexec.Command, error) {
			return Checkout.Command(CheckoutInput{App: "web", Release: "r", Commit: strings.ToUpper(good)})
		}},
		{"checkout: dot-dot release", func() (sshexec.Command, error) {
			return Checkout.Command(CheckoutInput{App: "web", Release: "..", Commit: good})
		}},
		{"checkout: nested release", func() (sshexec.Command, error) {
			return Checkout.Command(CheckoutInput{App: "web", Release: "a/b", Commit: good})
		}},
		{"checkout: root release", func() (sshexec.Command, error) {
			return Checkout.Command(CheckoutInput{App: "web", Release: "/", Commit: good})
		}},
		{"checkout: empty release", func() (sshexec.Command, error) {
			return Checkout.Command(CheckoutInput{App: "web", Release: "", Commit: good})
		}},
		{"haves: empty app", func() (sshexec.Command, error) { return Haves.Command(AppInput{}) }},
		{"remove: empty app", func() (sshexec.Command, error) { return RemoveApp.Command(AppInput{}) }},
		{"remove: app with slash", func() (sshexec.Command, error) { return RemoveApp.Command(AppInput{App: "../etc"}) }},
		{"start: bad slot", func() (sshexec.Command, error) {
			return SystemdStart.Command(SlotInput{App: "web", Slot: "red"})
		}},
		{"analytics: bad app", func() (sshexec.Command, error) {
			return Analytics.Command(AnalyticsInput{Apps: []string{"a b"}})
		}},
		{"build: NUL in command", func() (sshexec.Command, error) {
			return Build.Command(BuildInput{App: "web", Release: "r", Build: "make\x00"})
		}},
		{"build: variable name that is code", func() (sshexec.Command, error) {
			return Build.Command(BuildInput{App: "web", Release: "r", Env: map[string]string{"A=1; id #": "x"}})
		}},
		{"unit: hostile app", func() (sshexec.Command, error) {
			return SystemdInstallUnit.Command(SystemdUnitInput{Unit: nf.Slot{App: hostile, Slot: "blue", Port: 1, Release: strings.Repeat("a", 40)}})
		}},
		{"unit: release with a newline", func() (sshexec.Command, error) {
			return SystemdInstallUnit.Command(SystemdUnitInput{Unit: nf.Slot{App: "web", Slot: "blue", Port: 1, Release: strings.Repeat("a", 40) + "\nUser=root"}})
		}},
		{"site: hostile host", func() (sshexec.Command, error) {
			return NginxSwitch.Command(NginxSwitchInput{App: "web", Slot: "blue", Site: nf.Site{App: "web", Slot: "blue", Port: 1, Hosts: []string{"ok#; } access_log /root/.ssh/authorized_keys k;"}}})
		}},
		{"site: of another app", func() (sshexec.Command, error) {
			return Certificate.Command(CertificateInput{App: "web", Host: "a.test", Site: nf.Site{App: "victim", Slot: "blue", Port: 1}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.cmd(); !errors.Is(err, ErrInvalid) || !sshexec.IsTerminal(err) {
				t.Errorf("err = %v, want ErrInvalid (terminal)", err)
			}
		})
	}
}

// runLocal runs cmd through sshexec's local executor (the same bootstrap
// and framing as over SSH) with the Bakery root at root.
func runLocal(t *testing.T, cmd sshexec.Command, root string) (sshexec.Result, error) {
	t.Helper()
	if root != "" {
		cmd.Env[EnvRoot] = root
	}
	return sshexec.NewLocal().Run(t.Context(), cmd)
}

func mustRun(t *testing.T, cmd sshexec.Command, err error, root string) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	res, err := runLocal(t, cmd, root)
	if err != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", cmd.Env[EnvScript], err, res.Stdout, res.Stderr)
	}
	return string(res.Stdout)
}

// stdinOf reads a command's stdin ("" when it has none).
func stdinOf(t *testing.T, cmd sshexec.Command) string {
	t.Helper()
	if cmd.Stdin == nil {
		return ""
	}
	b, err := io.ReadAll(cmd.Stdin)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

//go:build e2e

package manager

import (
	"context"
	"strings"
	"testing"
	"time"

	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/scripts/testnodes"
	"bakery.dev/bakery/sshexec"
)

// TestE2EEnvFileRoundTrip checks that values written by nodefiles.EnvFile
// reach a real systemd unit unchanged, whatever characters they hold.
func TestE2EEnvFileRoundTrip(t *testing.T) {
	lab := testnodes.Require(t)
	node := testnodes.RequireNodes(t, 1)[0]
	pool := labPool(t, lab)
	ex := pool.Executor(sshexec.Target{Addr: node.Addr(), User: node.User, HostKey: node.HostKey})
	ctx := t.Context()
	values := map[string]string{
		"QUOTES": `it's "quoted"`,
		"DOLLAR": `$HOME ${PATH} $(id) ` + "`id`",
		"BACKSL": `C:\path\n not a newline \\ two`,
		"SPACES": "  leading and trailing  ",
		"UNI":    "grüße ✓",
		"EMPTY":  "",
		"HASH":   "# not a comment",
	}
	const app = "envcheck"
	run := func(script string, env map[string]string, stdin string) string {
		t.Helper()
		cmd := sshexec.Command{Script: script, Env: env, Timeout: time.Minute}
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		res, err := ex.Run(ctx, cmd)
		if err != nil {
			t.Fatalf("%s: %v\n%s%s", script, err, res.Stdout, res.Stderr)
		}
		return string(res.Stdout)
	}
	t.Cleanup(func() { // t.Context() is done by now
		ex.Run(context.Background(), sshexec.Command{Script: sudo + " systemctl stop envcheck blue; " + sudo + " unit-remove envcheck blue; " + sudo + " env-remove envcheck blue; " + sudo + " daemon-reload; " + sudo + " app-remove envcheck; rm -rf /var/lib/bakery/apps/envcheck"})
	})
	run(`mkdir -p /var/lib/bakery/apps/envcheck/run /var/lib/bakery/apps/envcheck/releases/`+strings.Repeat("e", 40)+` && chmod 755 /var/lib/bakery/apps/envcheck/run`, nil, "")
	run(sudo+` env-install envcheck blue`, nil, nf.EnvFile(values))
	// bakery-agent cannot read the file it had written (root 0600).
	if res, err := ex.Run(ctx, sshexec.Command{Script: "cat " + nf.EnvPath(app, nf.Blue)}); err == nil {
		t.Fatalf("bakery-agent can read the env file: %s", res.Stdout)
	}
	// The run script prints each variable between markers, then idles.
	script := "for v in QUOTES DOLLAR BACKSL SPACES UNI EMPTY HASH; do printf '%s=[%s]\\n' \"$v\" \"$(printenv \"$v\")\"; done\nexec sleep 600"
	if err := ex.WriteFile(ctx, sshexec.File{Path: nf.RunScriptPath(app, nf.Blue), Mode: 0o644, Content: []byte(nf.RunScript(script))}); err != nil {
		t.Fatal(err)
	}
	run(sudo+` unit-install envcheck blue 20999 `+strings.Repeat("e", 40)+` && `+sudo+` daemon-reload && `+sudo+` systemctl restart envcheck blue`, nil, "")
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for {
		out = run(sudo+` journal envcheck blue 50`, nil, "")
		if strings.Contains(out, "HASH=[") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for k, v := range values {
		if !strings.Contains(out, k+"=["+v+"]") {
			t.Errorf("%s did not reach the unit unchanged: want %q in\n%s", k, k+"=["+v+"]", out)
		}
	}
}

// TestE2EBuildCancelled: a build that runs as the app's user (through the
// helper, as root) still ends when its command is cancelled, and its
// release is bakery-agent's again.
func TestE2EBuildCancelled(t *testing.T) {
	lab := testnodes.Require(t)
	node := testnodes.RequireNodes(t, 1)[0]
	ex := labPool(t, lab).Executor(sshexec.Target{Addr: node.Addr(), User: node.User, HostKey: node.HostKey})
	const app = "buildcancel"
	release := strings.Repeat("b", 40) + "-0123456789abcdef"
	bg := context.Background()
	t.Cleanup(func() {
		ex.Run(bg, sshexec.Command{Script: sudo + " app-remove " + app + "; rm -rf " + nf.AppDir(app)})
	})
	if _, err := ex.Run(bg, sshexec.Command{Script: "mkdir -p " + nf.ReleaseDir(app, release)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	_, err := ex.Run(ctx, sshexec.Command{Script: sudo + " build " + app + " " + release, Stdin: strings.NewReader("echo started; sleep 67\n")})
	if err == nil {
		t.Fatal("the build was not cancelled")
	}
	var out string
	for i := 0; i < 50; i++ {
		res, _ := ex.Run(bg, sshexec.Command{Script: "pgrep -u " + nf.AppUser(app) + " -f 'sleep 6[7]'; stat -c %U " + nf.ReleaseDir(app, release)})
		if out = string(res.Stdout); out == "bakery-agent\n" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("5 s after the cancel: build processes and release owner:\n%s", out)
}

//go:build e2e

package testnodes

// The privilege model on a real node (issue 16, findings 1-3): the helper
// takes no configuration text and refuses every hostile parameter of the
// corpus (../testdata/privilege/helper-calls.json) without a trace; every
// app runs, and builds, as its own user, unable to read another app's
// environment or to write outside its own data directory.

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// shQuote makes s one word for the node's shell (test-local: the product
// quotes with sshexec.Quote).
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

type helperCall struct {
	Finding int      `json:"finding"`
	Name    string   `json:"name"`
	Args    []string `json:"args"`
	Stdin   string   `json:"stdin"`
}

// traces lists what a successful payload would leave behind.
const traces = `test ! -e /root/pwned && test ! -e /tmp/pwned && test ! -e /tmp/stolen &&
! ls /etc/systemd/system /etc/nginx/conf.d | grep -q prv && ! getent passwd bakery-app-prv &&
sha256sum /root/.ssh/authorized_keys 2>/dev/null; nginx -t 2>&1 | tail -n 1`

// TestE2EPrivilegeCorpus sends every call of the corpus to a node: each is
// refused by the helper (exit 2) and changes nothing.
func TestE2EPrivilegeCorpus(t *testing.T) {
	n := Require(t).Nodes[0]
	b, err := os.ReadFile("../testdata/privilege/helper-calls.json")
	if err != nil {
		t.Fatal(err)
	}
	var calls []helperCall
	if err := json.Unmarshal(b, &calls); err != nil {
		t.Fatal(err)
	}
	before, err := Exec(t, n.Name, traces)
	if err != nil {
		t.Fatalf("traces before: %v\n%s", err, before)
	}
	for _, c := range calls {
		words := []string{helper}
		for _, a := range c.Args {
			words = append(words, shQuote(a))
		}
		var in []byte
		if c.Stdin != "" {
			in = []byte(c.Stdin)
		}
		out, err := SSHInput(t, n, strings.Join(words, " "), in)
		if code := ExitCode(err); code != 2 {
			t.Errorf("finding %d, %s: exit %d (err %v), want 2 (refused); output %q", c.Finding, c.Name, code, err, out)
		}
	}
	if after, err := Exec(t, n.Name, traces); err != nil || after != before {
		t.Errorf("the corpus left traces:\nbefore %q\nafter  %q (%v)", before, after, err)
	}
}

// attempts is what a hostile app (or build step) tries; each line of its
// output is "ATTACK <name>: refused|SUCCEEDED", then "ID <user>" and
// "OWN <result of writing the own data directory>".
const attempts = `try() { if sh -c "$2" >/dev/null 2>&1; then echo "ATTACK $1: SUCCEEDED"; else echo "ATTACK $1: refused"; fi; }
try read-victim-env-file 'cat /etc/bakery/env/bakery-victim-blue.env'
try read-victim-environ "cat /proc/$VICTIM_PID/environ"
try read-victim-environ-grep "grep -a victim-secret /proc/$VICTIM_PID/environ"
try write-agent-authorized-keys 'echo ssh-ed25519 AAAA bakery-attack >> /home/bakery-agent/.ssh/authorized_keys'
try write-agent-home 'touch /home/bakery-agent/x'
try write-victim-data 'touch /var/lib/bakery-apps/victim/data/x'
try write-victim-release "touch /var/lib/bakery/apps/victim/releases/$REL/x"
try write-victim-run-script 'echo id >> /var/lib/bakery/apps/victim/run/blue.sh'
try write-bakery-root 'touch /var/lib/bakery/x'
try write-etc 'touch /etc/x'
try sudo 'sudo -n true'
echo "ID $(id -un)"
echo "OWN $(echo mine > "$OWN/f" && cat "$OWN/f")"
`

var attackLine = regexp.MustCompile(`ATTACK ([a-z-]+): (refused|SUCCEEDED)`)

// checkAttempts checks the output of attempts: every attack refused, the
// identity user, the own data directory writable.
func checkAttempts(t *testing.T, who, out, user string) {
	t.Helper()
	if i := strings.LastIndex(out, "ATTACK read-victim-env-file:"); i >= 0 {
		out = out[i:] // the journal may hold earlier runs
	}
	got := attackLine.FindAllStringSubmatch(out, -1)
	if len(got) != 11 {
		t.Fatalf("%s: %d attack results, want 11:\n%s", who, len(got), out)
	}
	for _, m := range got {
		if m[2] != "refused" {
			t.Errorf("%s: %s succeeded", who, m[1])
		}
	}
	if !strings.Contains(out, "ID "+user+"\n") {
		t.Errorf("%s does not run as %s:\n%s", who, user, out)
	}
	if !strings.Contains(out, "OWN mine\n") {
		t.Errorf("%s cannot write its own data directory:\n%s", who, out)
	}
}

// TestE2EAppIsolation runs a victim and a hostile app and a hostile build
// on one node.
func TestE2EAppIsolation(t *testing.T) {
	n := Require(t).Nodes[0]
	t.Cleanup(func() {
		for _, app := range []string{"victim", "attacker"} {
			SSH(t, n, helper+" systemctl stop "+app+" blue; "+helper+" unit-remove "+app+" blue; "+helper+" env-remove "+app+" blue; "+
				helper+" daemon-reload; "+helper+" app-remove "+app+"; rm -rf /var/lib/bakery/apps/"+app)
		}
	})
	// The victim: a secret in its env file, a process that holds it.
	prepareApp(t, n, "victim", "exec sleep 1000")
	mustSSH(t, n, helper+" env-install victim blue", "SECRET=\"victim-secret-value\"\n")
	mustSSH(t, n, helper+" unit-install victim blue 18095 "+testRelease+" && "+helper+" daemon-reload && "+helper+" systemctl restart victim blue")
	pid := strings.TrimSpace(mustSSH(t, n, helper+" systemctl show victim blue | sed -n 's/^MainPID=//p'"))
	if pid == "" || pid == "0" {
		t.Fatalf("victim has no main process: %q", pid)
	}
	// bakery-agent itself cannot read the victim's environment either.
	if out, err := SSH(t, n, "cat /proc/"+pid+"/environ"); err == nil {
		t.Errorf("bakery-agent reads the victim's environ: %q", out)
	}

	// The attacker, as an app.
	prepareApp(t, n, "attacker", attempts+"exec sleep 1000")
	mustSSH(t, n, helper+" env-install attacker blue", "VICTIM_PID="+pid+"\nREL="+testRelease+"\nOWN=/var/lib/bakery-apps/attacker/data\n")
	mustSSH(t, n, helper+" unit-install attacker blue 18096 "+testRelease+" && "+helper+" daemon-reload && "+helper+" systemctl restart attacker blue")
	var journal string
	for i := 0; i < 100 && !strings.Contains(journal, "OWN "); i++ {
		journal = mustSSH(t, n, "sleep 0.1; "+helper+" journal attacker blue 100")
	}
	checkAttempts(t, "app", journal, "bakery-app-attacker")
	// its release stays read-only to it, and its /tmp is its own
	if out := mustSSH(t, n, helper+" journal attacker blue 100"); strings.Contains(out, "SUCCEEDED") {
		t.Errorf("app journal:\n%s", out)
	}

	// The attacker, as a build step: the same attempts, plus writing the
	// release (allowed during the build only).
	out, err := SSHInput(t, n, helper+" build attacker "+testRelease, []byte("export VICTIM_PID="+pid+" REL="+testRelease+" OWN=/var/lib/bakery-apps/attacker/data\n"+
		attempts+"echo built > .bakery-built && echo RELEASE-WRITABLE\n"))
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	checkAttempts(t, "build", out, "bakery-app-attacker")
	if !strings.Contains(out, "RELEASE-WRITABLE") {
		t.Errorf("the build cannot write its release:\n%s", out)
	}
	// After the build the release is bakery-agent's again: read-only to the app.
	if got := mustSSH(t, n, "stat -c %U /var/lib/bakery/apps/attacker/releases/"+testRelease+" /var/lib/bakery/apps/attacker/releases/"+testRelease+"/.bakery-built"); got != "bakery-agent\nbakery-agent\n" {
		t.Errorf("release owners after the build: %q", got)
	}
	// A built marker that is a link (bakery-agent reads the marker) fails
	// the build and is removed.
	if out, err := SSHInput(t, n, helper+" build attacker "+testRelease, []byte("ln -sf /home/bakery-agent/.ssh/authorized_keys .bakery-built\n")); err == nil {
		t.Errorf("a build whose marker is a symbolic link succeeded: %s", out)
	}
	if out, err := SSH(t, n, "test ! -e /var/lib/bakery/apps/attacker/releases/"+testRelease+"/.bakery-built && test ! -L /var/lib/bakery/apps/attacker/releases/"+testRelease+"/.bakery-built"); err != nil {
		t.Errorf("the linked marker is still there: %v %s", err, out)
	}
	if out, err := Exec(t, n.Name, traces); err != nil || strings.Contains(out, "x\n") {
		t.Errorf("traces: %q %v", out, err)
	}
	if got, _ := Exec(t, n.Name, "ls /home/bakery-agent/x /var/lib/bakery/x /etc/x /var/lib/bakery-apps/victim/data/x 2>/dev/null; grep -c bakery-attack /home/bakery-agent/.ssh/authorized_keys"); strings.TrimSpace(got) != "0" {
		t.Errorf("an attack left a file: %q", got)
	}

	// systemd's own exposure rating of the app's unit, and of a unit as
	// Bakery wrote it before (User=bakery-agent, no sandbox).
	score := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	after := score.FindStringSubmatch(mustSSH(t, n, "systemd-analyze security --no-pager bakery-attacker-blue.service 2>&1 | tail -n 1"))
	old := "[Unit]\nDescription=old\n[Service]\nType=simple\nUser=bakery-agent\nWorkingDirectory=/var/lib/bakery/apps/attacker/releases/" + testRelease +
		"\nEnvironment=PORT=18097\nExecStart=/bin/sh -c 'exec sleep 1000'\nRestart=on-failure\n[Install]\nWantedBy=multi-user.target\n"
	beforeOut, err := ExecInput(t, n.Name, "cat > /run/systemd/system/bakery-oldstyle-blue.service && systemctl daemon-reload && systemd-analyze security --no-pager bakery-oldstyle-blue.service 2>&1 | tail -n 1; rm -f /run/systemd/system/bakery-oldstyle-blue.service; systemctl daemon-reload", []byte(old))
	before := score.FindStringSubmatch(beforeOut)
	if err != nil || after == nil || before == nil {
		t.Fatalf("systemd-analyze security: before %q (%v), after %v", beforeOut, err, after)
	}
	t.Logf("systemd-analyze security: unit as before (User=bakery-agent) %s, app unit now %s", before[1], after[1])
	if v, err := strconv.ParseFloat(after[1], 64); err != nil || v >= 4 {
		t.Errorf("the app unit's exposure is %s, want below 4 (OK)", after[1])
	}
}

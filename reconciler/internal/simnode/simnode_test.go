package simnode

import (
	"testing"
	"time"

	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/sshexec"
)

// A simulated node answers the observe scripts by name (BAKERY_SCRIPT)
// and nothing else.
func TestAnswersObserveScripts(t *testing.T) {
	priv, pub, err := sshexec.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(pub)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.SetApps(map[string]string{"web": "unit blue active\nunit green inactive\nsite -\n"})
	signer, err := sshexec.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sshexec.NewPool(sshexec.Config{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ex := pool.Executor(sshexec.Target{Addr: n.Addr, User: "bakery-agent", HostKey: n.HostKey})
	ctx := t.Context()

	no, err := nodescript.ObserveNodeOn(ctx, ex, 10*time.Second)
	if err != nil || no.Kernel != "Linux 6.1.0-sim" {
		t.Fatalf("observe-node: %+v, %v", no, err)
	}
	ao, err := nodescript.ObserveAppOn(ctx, ex, nodescript.ObserveAppInput{App: "web"}, 10*time.Second)
	if err != nil || ao.Units["blue"] != "active" {
		t.Fatalf("observe-app: %+v, %v", ao, err)
	}

	// Scripts are matched by name only: the inline scripts of before (no
	// BAKERY_SCRIPT), whose text once matched, are not answered.
	if res, err := ex.Run(ctx, sshexec.Command{Script: "echo ready=bakery-ready\n"}); err == nil {
		t.Fatalf("inline node observe answered: %q", res.Stdout)
	}
	if res, err := ex.Run(ctx, sshexec.Command{Script: "d=/var/lib/bakery/apps/$APP\n", Env: map[string]string{"APP": "web"}}); err == nil {
		t.Fatalf("inline app observe answered: %q", res.Stdout)
	}

	// Any other script fails.
	cmd, err := nodescript.SystemdStart.Command(nodescript.SlotInput{App: "web", Slot: "blue"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Run(ctx, cmd); err == nil {
		t.Fatal("systemd-start answered")
	}
	if got := n.Commands.Load(); got != 5 {
		t.Errorf("commands = %d", got)
	}
}

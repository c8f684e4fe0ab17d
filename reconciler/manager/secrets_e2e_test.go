//go:build e2e

package manager

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/scripts/testnodes"
)

// TestE2ESecrets deploys the example app with its greeting and a second
// value from Secrets, on a real node, and looks for the canary values
// everywhere but the app: the stored rollout log (the build prints the
// variable: masked), the process list sampled through the whole rollout,
// unit files, Bakery's files on the node, nginx's config and the journal.
// Changing the secret rolls the deployment out again with the new value.
func TestE2ESecrets(t *testing.T) {
	lab := testnodes.Require(t)
	node := testnodes.RequireNodes(t, 1)[0]
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	repo, commit := exampleRepo(t)
	c1 := commit("v1", map[string]string{"CHANGES": "v1\n"})
	nn := labNode(node.Name, node.Address)
	nn.Spec.HostKey = node.HostKey
	if _, err := st.Create(ctx, nn); err != nil {
		t.Fatal(err)
	}
	const app = "shop"
	const h = "/usr/local/lib/bakery/bakery-sudo"
	cleanup := `for s in blue green; do sudo -n ` + h + ` systemctl disable shop $s; sudo -n ` + h + ` systemctl stop shop $s; sudo -n ` + h + ` unit-remove shop $s; sudo -n ` + h + ` env-remove shop $s; done
sudo -n ` + h + ` nginx-site-remove shop; rm -rf /var/lib/bakery/apps/shop; sudo -n ` + h + ` daemon-reload; sudo -n ` + h + ` nginx-reload`
	testnodes.SSH(t, node, cleanup)
	t.Cleanup(func() { testnodes.SSH(t, node, cleanup) })

	kr, err := sealed.ParseKeyring(sealed.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	const greeting = "canary-greeting-5b2d71"
	const hidden = "canary-hidden-e48a09c3"
	putSecret(t, st, kr, "shop-greeting", map[string]string{"GREETING": greeting})
	putSecret(t, st, kr, "shop-db", map[string]string{"DB_PASSWORD": hidden})

	key := labKey(t, lab)
	mgr, _ := runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: time.Minute, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute, Keyring: kr})

	// Sample the node's process list (every user's, full command lines)
	// while the rollout runs.
	var psMu sync.Mutex
	var ps strings.Builder
	samples := 0
	psCtx, psStop := context.WithCancel(ctx)
	psDone := make(chan struct{})
	go func() {
		defer close(psDone)
		for psCtx.Err() == nil {
			out, _ := testnodes.Exec(t, node.Name, "ps -eo user,pid,args ww")
			psMu.Lock()
			ps.WriteString(out)
			samples++
			psMu.Unlock()
		}
	}()

	d := helloDeployment(repo, node.Name)
	d.Metadata.Name = app
	d.Spec.Ingress.Hosts = []string{"shop.example.test"}
	d.Spec.Build.Build = `node build.js && echo "build sees DB_PASSWORD=$DB_PASSWORD and GREETING=$GREETING"`
	d.Spec.Run.Command = `echo "shop starts with DB_PASSWORD=$DB_PASSWORD"; exec node server.js`
	d.Spec.Run.Env = []api.EnvVar{{Name: "GREETING", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "shop-greeting", Key: "GREETING"}}}}
	d.Spec.Run.EnvFrom = []api.EnvFromSource{{SecretRef: "shop-db"}}
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, cond func(d *api.Deployment) bool) *api.Deployment {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			o, err := st.Get(ctx, api.KindDeployment, app)
			if err != nil {
				t.Fatal(err)
			}
			d := o.(*api.Deployment)
			if cond(d) {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s; status %+v", what, d.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	got := wait("first rollout Ready", func(d *api.Deployment) bool {
		c := api.FindCondition(d.Status.Conditions, api.ConditionReady)
		return d.Status.Commit == c1 && c != nil && c.Status == api.ConditionTrue
	})
	psStop()
	<-psDone

	serve := func() string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+net.JoinHostPort(node.Address, "80")+"/", nil)
		req.Host = "shop.example.test"
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		return string(b[:n])
	}
	if body := serve(); !strings.Contains(body, greeting) {
		t.Fatalf("the app did not get its greeting from the secret: %q", body)
	}

	// The stored rollout log: the build printed both values; masked.
	lines, err := st.Logs(ctx, got.Status.CurrentRollout.ID, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var logText strings.Builder
	for _, l := range lines {
		logText.WriteString(l.Text + "\n")
	}
	if !strings.Contains(logText.String(), "build sees DB_PASSWORD=*** and GREETING=***") {
		t.Errorf("the build's line is not in the log, masked:\n%s", logText.String())
	}
	psMu.Lock()
	t.Logf("process list sampled %d times during the rollout", samples)
	if samples < 3 {
		t.Errorf("only %d process list samples", samples)
	}
	psText := ps.String()
	psMu.Unlock()
	// Everything on the node but the env files.
	files, _ := testnodes.Exec(t, node.Name, `cat /etc/systemd/system/bakery-shop-*.service /etc/nginx/conf.d/bakery-shop.conf; grep -rl -e canary- /var/lib/bakery/apps/shop /etc/systemd /etc/nginx /home /tmp /var/tmp 2>/dev/null; journalctl --no-pager -q -o json | grep -e canary- | grep -v '"_SYSTEMD_UNIT":"bakery-shop-'; true`)
	// The app printed its secret to its journal; `bakery logs` (runtime
	// logs through the control plane) shows it masked.
	var rt strings.Builder
	if err := mgr.RuntimeLogs(ctx, app, api.RuntimeLogRequest{Lines: 500}, func(l api.RuntimeLogLine) {
		psMu.Lock()
		rt.WriteString(l.Text + "\n")
		psMu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rt.String(), "shop starts with DB_PASSWORD=***") {
		t.Errorf("runtime logs lack the app's line, masked:\n%s", rt.String())
	}
	if strings.Contains(rt.String(), hidden) {
		t.Error("runtime logs show the secret value")
	}
	envFile, _ := testnodes.Exec(t, node.Name, "stat -c '%a %U' /etc/bakery/env/bakery-shop-blue.env; grep -c -e "+hidden+" -e "+greeting+" /etc/bakery/env/bakery-shop-blue.env")
	if f := strings.Fields(envFile); len(f) != 3 || f[0] != "600" || f[1] != "root" || f[2] != "2" {
		t.Errorf("env file mode/content: %q", envFile)
	}
	for what, text := range map[string]string{"the stored rollout log": logText.String(), "the process list": psText, "files on the node or the journal": files, "the deployment's status": string(got.StatusJSON())} {
		for _, v := range []string{greeting, hidden} {
			if strings.Contains(text, v) {
				t.Errorf("%s shows the secret value %s", what, v)
			}
		}
	}

	// A changed secret rolls the deployment out again.
	rev := got.Status.Revision
	putSecret(t, st, kr, "shop-greeting", map[string]string{"GREETING": greeting + "-v2"})
	wait("rollout of the changed secret", func(d *api.Deployment) bool {
		c := api.FindCondition(d.Status.Conditions, api.ConditionReady)
		return d.Status.Revision == rev+1 && c != nil && c.Status == api.ConditionTrue && c.ObservedGeneration == d.Metadata.Generation &&
			d.Status.CurrentRollout != nil && d.Status.CurrentRollout.State == api.RolloutSucceeded
	})
	if body := serve(); !strings.Contains(body, greeting+"-v2") {
		t.Fatalf("after the secret changed the app serves %q", body)
	}
}

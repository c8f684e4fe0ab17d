//go:build e2e

package manager

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/scripts/testnodes"
)

// dataCase is one runtime's app for the persistent-data test.
type dataCase struct {
	app, host string
	docker    bool
}

// seenCommand appends "REL N" to store/seen on every start of the app: N
// is the number of lines the start found, so line i reads "REL i" only if
// every earlier start's line was there to read.
const (
	seenSystemd = `n=$(cat store/seen 2>/dev/null | wc -l); echo "$(basename "$PWD" | cut -c1-12) $n" >> store/seen; exec node server.js`
	seenDocker  = `n=$(cat /store/seen 2>/dev/null | wc -l); echo "$(cat /VERSION) $n" >> /store/seen; exec /bin/sh /docker-start.sh`
)

func (c dataCase) deployment(repo string, nodes ...string) *api.Deployment {
	var d *api.Deployment
	if c.docker {
		d = dockerDeployment(repo, nodes...)
		d.Spec.Run.Command = seenDocker
		// No cpu: dockerd refuses --cpus on nodes without the cpu
		// controller (see TestE2EResourceLimits).
		d.Spec.Resources = &api.Resources{Memory: "256Mi", Tasks: 64}
	} else {
		d = helloDeployment(repo, nodes...)
		d.Spec.Run.Command = seenSystemd
		d.Spec.Resources = &api.Resources{Memory: "256Mi", CPU: "0.5", Tasks: 64}
		// A worker and a schedule get the same directory and limits.
		d.Spec.Processes = []api.Process{{Name: "sleeper", Command: "exec sleep 86400"}}
		d.Spec.Schedules = []api.Schedule{{Name: "tick", Schedule: "daily", Command: "date >> store/sched-ran"}}
	}
	// The release command (a migration) sees the directory too.
	d.Spec.Release = &api.Release{Command: "date >> store/release-ran"}
	if c.docker {
		d.Spec.Release.Command = "date >> /store/release-ran"
	}
	d.Metadata.Name = c.app
	d.Spec.Ingress = &api.Ingress{Hosts: []string{c.host}}
	d.Spec.Persistent = []api.Persistent{{Path: "store", Size: "1Mi"}}
	d.Default()
	return d
}

// file is store/seen on a node (a shell word).
func (c dataCase) file() string {
	if c.docker {
		return fmt.Sprintf(`"$(docker volume inspect --format '{{.Mountpoint}}' %s 2>/dev/null)/seen"`, nf.DockerVolume(c.app, "store"))
	}
	return nf.PersistentDir(c.app, "store") + "/seen"
}

// seen reads the app's store/seen on a node as root ("" when absent).
func (c dataCase) seen(t *testing.T, n testnodes.Node) string {
	t.Helper()
	out, _ := testnodes.Exec(t, n.Name, "cat "+c.file()+" 2>/dev/null || true")
	return strings.TrimSpace(out)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// checkSeen: line i of store/seen is "REL i" (every start read every
// earlier start's line) and the releases started include want, in order.
func checkSeen(t *testing.T, node, seen string, want ...string) int {
	t.Helper()
	lines := strings.Split(seen, "\n")
	var rels []string
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 || f[1] != strconv.Itoa(i) {
			t.Fatalf("%s: store/seen line %d is %q, want \"REL %d\" (a start did not read what earlier ones wrote):\n%s", node, i, l, i, seen)
		}
		rels = append(rels, f[0])
	}
	j := 0
	for _, r := range rels {
		if j < len(want) && r == want[j] {
			j++
		}
	}
	if j < len(want) {
		t.Fatalf("%s: starts %v do not include %v in order", node, rels, want)
	}
	return len(lines)
}

func (e *procEnv) cleanData(c dataCase) {
	for _, n := range e.nodes {
		testnodes.Exec(e.t, n.Name, fmt.Sprintf(`h=/usr/local/lib/bakery/bakery-sudo
$h sched-remove %[1]s
for s in blue green; do docker rm -f bakery-%[1]s-$s; $h proc-remove %[1]s $s; $h systemctl disable %[1]s $s; $h systemctl stop %[1]s $s; $h unit-remove %[1]s $s; done >/dev/null 2>&1
v=$(docker volume ls -q --filter label=bakery.app=%[1]s 2>/dev/null); [ -z "$v" ] || docker volume rm -f $v >/dev/null
$h nginx-site-remove %[1]s; $h app-remove %[1]s; rm -rf /var/lib/bakery/apps/%[1]s
$h daemon-reload; $h nginx-reload`, c.app))
	}
}

// deleteApp asks for the deployment's deletion (purging its data or not)
// and waits until it is gone.
func (e *procEnv) deleteApp(app string, purge bool) {
	e.t.Helper()
	d := e.get(app)
	if d.Metadata.Annotations == nil {
		d.Metadata.Annotations = map[string]string{}
	}
	d.Metadata.Annotations[api.AnnotationDeletionRequested] = api.Now().Format(time.RFC3339)
	if purge {
		d.Metadata.Annotations[api.AnnotationPurgeData] = "true"
	}
	d.Metadata.ResourceVersion = ""
	if _, err := e.st.Update(e.t.Context(), d); err != nil {
		e.t.Fatal(err)
	}
	e.mgr.EnqueueKey(api.KindDeployment + "/" + app)
	waitFor(e.t, 2*time.Minute, "deployment "+app+" deleted", func() bool {
		_, err := e.st.Get(e.t.Context(), api.KindDeployment, app)
		return errors.Is(err, store.ErrNotFound)
	})
}

func TestE2EPersistentSystemd(t *testing.T) {
	testPersistent(t, dataCase{app: "pdata", host: "pdata.example.test"})
}

func TestE2EPersistentDocker(t *testing.T) {
	testPersistent(t, dataCase{app: "pdock", host: "pdock.example.test", docker: true})
}

// testPersistent, on three nodes under continuous requests: a file that
// v1 wrote in its persistent directory is read by v2, after a rollback to
// v1 and after a restart; status reports the directory's size; deleting
// the deployment keeps the file (a new deployment of the name reads it
// on), deleting it with purge-data removes it. No request fails while
// the deployment exists.
func testPersistent(t *testing.T, c dataCase) {
	e := startProcEnv(t)
	ctx := t.Context()
	e.cleanData(c)
	t.Cleanup(func() { e.cleanData(c) })
	names := []string{e.nodes[0].Name, e.nodes[1].Name, e.nodes[2].Name}

	c1 := e.commit("data v1 "+c.app, map[string]string{"CHANGES": "data v1 " + c.app + "\n"})
	if _, err := e.st.Create(ctx, c.deployment(e.repo, names...)); err != nil {
		t.Fatal(err)
	}
	d := e.wait(c.app, "v1", 3*time.Minute, readyAt(c1))
	c.checkLimits(t, e, d)
	load := startLoadAs(e.nodes, c.host)
	c2 := e.commit("data v2 "+c.app, map[string]string{"CHANGES": "data v2 " + c.app + "\n"})
	e.wait(c.app, "v2", 3*time.Minute, readyAt(c2))
	for _, n := range e.nodes {
		checkSeen(t, n.Name, c.seen(t, n), c1[:12], c2[:12])
	}
	ran := 0
	for _, n := range e.nodes {
		out, _ := testnodes.Exec(t, n.Name, "cat "+strings.Replace(c.file(), "/seen", "/release-ran", 1)+" 2>/dev/null | wc -l")
		ran += atoi(strings.TrimSpace(out))
	}
	if ran != 2 {
		t.Fatalf("the release command wrote %d lines into the persistent directories, want 2 (v1 and v2, on one node each)", ran)
	}
	if _, err := e.mgr.DeploymentAction(ctx, c.app, api.ActionRequest{Action: api.ActionRollback, By: "user:e2e"}); err != nil {
		t.Fatal(err)
	}
	e.wait(c.app, "rolled back to v1", 3*time.Minute, readyAt(c1))
	for _, n := range e.nodes {
		checkSeen(t, n.Name, c.seen(t, n), c1[:12], c2[:12], c1[:12])
	}
	before := map[string]int{}
	for _, n := range e.nodes {
		before[n.Name] = len(strings.Split(c.seen(t, n), "\n"))
	}
	if _, err := e.mgr.DeploymentAction(ctx, c.app, api.ActionRequest{Action: api.ActionRestart, By: "user:e2e"}); err != nil {
		t.Fatal(err)
	}
	d = e.wait(c.app, "restarted", 3*time.Minute, func(d *api.Deployment) bool {
		return readyAt(c1)(d) && d.Status.Restart != "" && d.Status.RestartDone == d.Status.Restart
	})
	for _, n := range e.nodes {
		if got := checkSeen(t, n.Name, c.seen(t, n), c1[:12], c2[:12], c1[:12], c1[:12]); got <= before[n.Name] {
			t.Fatalf("%s: no start after the restart (%d lines, %d before)", n.Name, got, before[n.Name])
		}
	}
	// Status: the directory's size on every node, from observe.
	d = e.wait(c.app, "persistent sizes in status", time.Minute, func(d *api.Deployment) bool {
		for _, ns := range d.Status.Nodes {
			if len(ns.Persistent) != 1 || ns.Persistent[0].Bytes <= 0 {
				return false
			}
		}
		return len(d.Status.Nodes) == 3
	})
	for _, ns := range d.Status.Nodes {
		t.Logf("%s: persistent %s %d bytes (size %s, over %v)", ns.Node, ns.Persistent[0].Path, ns.Persistent[0].Bytes, ns.Persistent[0].Size, ns.Persistent[0].OverSize)
	}
	load.check(t, c.app+": v1 → v2, rollback, restart with a persistent directory")
	for _, n := range e.nodes {
		t.Logf("%s store/seen: %q", n.Name, c.seen(t, n))
	}

	// Delete keeps the data; a new deployment of the name reads on.
	lines := map[string]int{}
	for _, n := range e.nodes {
		lines[n.Name] = len(strings.Split(c.seen(t, n), "\n"))
	}
	e.deleteApp(c.app, false)
	for _, n := range e.nodes {
		if got := c.seen(t, n); len(strings.Split(got, "\n")) != lines[n.Name] {
			t.Fatalf("%s: after delete (data kept) store/seen is %q", n.Name, got)
		}
	}
	c3 := e.commit("data v3 "+c.app, map[string]string{"CHANGES": "data v3 " + c.app + "\n"})
	if _, err := e.st.Create(ctx, c.deployment(e.repo, names...)); err != nil {
		t.Fatal(err)
	}
	e.wait(c.app, "deployed again after delete", 3*time.Minute, readyAt(c3))
	for _, n := range e.nodes {
		if got := checkSeen(t, n.Name, c.seen(t, n), c1[:12], c2[:12], c1[:12], c1[:12], c3[:12]); got <= lines[n.Name] {
			t.Fatalf("%s: the new deployment did not read on (%d lines)", n.Name, got)
		}
	}
	// Delete with purge-data removes it.
	e.deleteApp(c.app, true)
	for _, n := range e.nodes {
		if got := c.seen(t, n); got != "" {
			t.Fatalf("%s: after delete --purge-data store/seen is still %q", n.Name, got)
		}
	}
}

// checkLimits shows where spec.resources reached on a node: the unit's
// properties (systemd) or the container's host config (docker), and
// whether the node's cgroup tree has the controllers that would enforce
// them. The nspawn test nodes have none (see docs: the host's memory,
// cpu and pids controllers are bound to cgroup v1 hierarchies, so the
// nodes' cgroup2 tree cannot get them): the values are proven to reach
// systemd and docker, enforcement is not.
func (c dataCase) checkLimits(t *testing.T, e *procEnv, d *api.Deployment) {
	t.Helper()
	n, slot := e.nodes[0], d.Status.Nodes[0].ActiveSlot
	ctrl, _ := testnodes.Exec(t, n.Name, "cat /sys/fs/cgroup/cgroup.controllers 2>&1; cat /sys/fs/cgroup/cgroup.subtree_control 2>&1")
	t.Logf("%s: cgroup2 controllers available / enabled at the node's root: %q", n.Name, strings.TrimSpace(ctrl))
	if c.docker {
		out, err := testnodes.Exec(t, n.Name, fmt.Sprintf("docker inspect --format '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}} {{end}}' bakery-%s-%s", c.app, slot))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: docker inspect bakery-%s-%s: Memory NanoCpus PidsLimit Mounts = %s", n.Name, c.app, slot, strings.TrimSpace(out))
		if !strings.Contains(out, "volume:"+nf.DockerVolume(c.app, "store")+":/store") {
			t.Fatalf("%s: the container has no volume at /store: %s", n.Name, out)
		}
		if strings.HasPrefix(out, "268435456 0 64 ") {
			return // enforced by a node with the controllers
		}
		// Discarded: docker run said so on stderr, into the rollout's log
		// (which proves the options reached docker).
		lines, err := e.st.Logs(t.Context(), d.Status.CurrentRollout.ID, 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		var warned []string
		for _, l := range lines {
			if strings.Contains(l.Text, "Limitation discarded") || strings.Contains(l.Text, "limit") {
				warned = append(warned, l.Node+": "+l.Text)
			}
		}
		t.Logf("docker's warnings in the rollout log (%d):\n%s", len(warned), strings.Join(warned, "\n"))
		if len(warned) == 0 {
			t.Fatalf("the container has no limits (%s) and docker run warned of none: the options did not reach docker", strings.TrimSpace(out))
		}
		return
	}
	unit := fmt.Sprintf("bakery-%s-%s.service", c.app, slot)
	out, err := testnodes.Exec(t, n.Name, "systemctl show -p MemoryMax -p CPUQuotaPerSecUSec -p TasksMax -p BindPaths -p ControlGroup "+unit)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: systemctl show %s:\n%s", n.Name, unit, strings.TrimSpace(out))
	for _, want := range []string{"MemoryMax=268435456", "CPUQuotaPerSecUSec=500ms", "TasksMax=64", "BindPaths=" + nf.PersistentDir(c.app, "store") + ":"} {
		if !strings.Contains(out, want) {
			t.Fatalf("%s: %s lacks %s", n.Name, unit, want)
		}
	}
	cg, _ := testnodes.Exec(t, n.Name, "d=/sys/fs/cgroup$(systemctl show -p ControlGroup --value "+unit+"); ls $d; cat $d/memory.max $d/pids.max $d/cpu.max 2>&1")
	t.Logf("%s: the unit's cgroup files and limits: %q", n.Name, strings.TrimSpace(cg))
	// The worker's and the schedule's units carry them too; a run of the
	// schedule writes into the persistent directory.
	for _, u := range []string{fmt.Sprintf("bakery-%s-%s-sleeper@1.service", c.app, slot), "bakery-" + c.app + "-sched-tick.service"} {
		for _, nn := range e.nodes {
			out, err := testnodes.Exec(t, nn.Name, "systemctl show -p LoadState -p MemoryMax -p CPUQuotaPerSecUSec -p TasksMax -p BindPaths "+u)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "LoadState=not-found") {
				continue // the schedule runs on one node
			}
			for _, want := range []string{"MemoryMax=268435456", "CPUQuotaPerSecUSec=500ms", "TasksMax=64", "BindPaths=" + nf.PersistentDir(c.app, "store") + ":"} {
				if !strings.Contains(out, want) {
					t.Fatalf("%s: %s lacks %s:\n%s", nn.Name, u, want, out)
				}
			}
			if strings.Contains(u, "-sched-") {
				if _, err := testnodes.Exec(t, nn.Name, "systemctl start "+u+" && test -s "+nf.PersistentDir(c.app, "store")+"/sched-ran"); err != nil {
					t.Fatalf("%s: a run of the schedule wrote nothing into the persistent directory: %v", nn.Name, err)
				}
				t.Logf("%s: %s has the limits and its run wrote store/sched-ran", nn.Name, u)
			}
		}
	}
}

//go:build e2e

package manager

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/scripts/testnodes"
)

// shellWorker is jobWorker for a busybox image: 3 s per job, lines on
// stdout (the container's log), REL from the image's /VERSION.
const shellWorker = `rel=$(cat /VERSION); stop=0
trap 'stop=1; echo "term $rel $$"' TERM
n=0
while [ "$stop" = 0 ]; do
  n=$((n + 1)); echo "start $n $rel $$"
  sleep 3 & p=$!
  while kill -0 "$p" 2>/dev/null; do wait "$p"; done
  echo "done $n $rel $$"
done
echo "exit $rel $$"
`

// TestE2EProcessesDocker is TestE2EProcesses under runtime docker, on
// three nodes under continuous requests: the worker runs as a container of
// the release's image; on a new revision the old container gets SIGTERM
// after the new one started and passed its health check (docker run --rm
// of the image), finishes its job and exits; a container killed behind
// Bakery's back is started again at resync; deletion removes every
// container.
func TestE2EProcessesDocker(t *testing.T) {
	e := startProcEnv(t)
	ctx := t.Context()
	const app, host = "dworker", "dworker.example.test"
	for _, n := range e.nodes {
		testnodes.SSH(t, n, `c=$(docker ps -aq --filter label=bakery.app=dworker); [ -z "$c" ] || docker rm -f $c >/dev/null
h=/usr/local/lib/bakery/bakery-sudo; sudo -n $h nginx-site-remove dworker && sudo -n $h nginx-reload; rm -rf /var/lib/bakery/apps/dworker`)
	}
	df, err := os.ReadFile(e.repo + "/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	c1 := e.commit("worker", map[string]string{"worker.sh": shellWorker,
		"Dockerfile": strings.Replace(string(df), "COPY docker-start.sh /docker-start.sh", "COPY docker-start.sh worker.sh /", 1)})
	d := dockerDeployment(e.repo, e.nodes[0].Name, e.nodes[1].Name, e.nodes[2].Name)
	d.Metadata.Name = app
	d.Spec.Ingress.Hosts = []string{host}
	d.Spec.Processes = []api.Process{{Name: "worker", Command: "exec /bin/sh /worker.sh", StopTimeout: &api.Duration{Duration: 20 * time.Second},
		HealthCheck: &api.ProcessHealthCheck{Exec: "test -s /VERSION"}}}
	d.Default()
	if _, err := e.st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	e.wait(app, "docker rollout with a worker", 3*time.Minute, procsReady(c1))
	t.Logf("docker: first rollout with a worker on 3 nodes: %v", time.Since(t0))

	load := startLoadAs(e.nodes, host)
	time.Sleep(4 * time.Second)
	c2 := e.commit("v2", map[string]string{"CHANGES": "v2\n"})
	t0 = time.Now()
	d = e.wait(app, "docker v2 with its worker", 3*time.Minute, procsReady(c2))
	t.Logf("docker: rollout of v2 with a worker handover: %v", time.Since(t0))
	per, _ := stepTimes(t, e.st, d.Status.CurrentRollout.ID)
	logStepTimes(t, "docker v2 with a worker", per, 3)
	t.Logf("docker: switching workers, summed over 3 nodes (ms): start of the new ones with health check %d, stop of the old ones %d",
		per["processes"], per["stop-processes"])
	slot := d.Status.Nodes[0].ActiveSlot
	old := "blue"
	if slot == "blue" {
		old = "green"
	}
	for _, n := range e.nodes {
		out, err := testnodes.SSH(t, n, fmt.Sprintf("docker logs bakery-%[1]s-%[2]s-worker-1; docker logs bakery-%[1]s-%[3]s-worker-1", app, old, slot))
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		checkHandover(t, n.Name, strings.Split(strings.TrimSpace(out), "\n"), c1[:12], c2[:12])
	}

	n1 := e.nodes[0]
	c := fmt.Sprintf("bakery-%s-%s-worker-1", app, slot)
	if _, err := testnodes.SSH(t, n1, "docker kill "+c); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	waitFor(t, time.Minute, "the resync starts the killed worker container again", func() bool {
		out, _ := testnodes.SSH(t, n1, "docker container inspect --format '{{.State.Running}} {{.State.StartedAt}}' "+c)
		return strings.HasPrefix(out, "true")
	})
	t.Logf("docker: the killed worker ran again after %v", time.Since(t0))
	load.check(t, "a docker worker handover and a killed worker")

	cur := e.get(app)
	cur.Metadata.Annotations = map[string]string{api.AnnotationDeletionRequested: "now"}
	cur.Metadata.ResourceVersion = ""
	if _, err := e.st.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the docker deployment is deleted", func() bool {
		_, err := e.st.Get(ctx, api.KindDeployment, app)
		return errors.Is(err, store.ErrNotFound)
	})
	for _, n := range e.nodes {
		out, err := testnodes.SSH(t, n, "echo containers $(docker ps -aq --filter label=bakery.app="+app+" | wc -l)")
		if err != nil || strings.TrimSpace(out) != "containers 0" {
			t.Fatalf("%s: %q %v", n.Name, out, err)
		}
	}
}

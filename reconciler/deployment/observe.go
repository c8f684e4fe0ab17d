package deployment

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

// appObserveScript prints, in one round trip, everything Plan needs about
// one app on a node. It only reads. Line formats:
//
//	state <state.json on one line>
//	unit <slot> <ActiveState>
//	site <sha256 of the nginx site> | site -
//	release <commit> <build hash | ->
//	have <commit in the node's repo>
//	other <another app's state.json on one line>
//	listen <TCP port something listens on>
//
// For a docker app (RUNTIME=docker, or a state file saying dockerized)
// also, from `docker image ls` and `docker inspect`:
//
//	docker
//	image <tag of the app's image repository>
//	container <name> <status> <health | -> <image> <commit label | -> <revision label | ->
//	docker-error <why docker cannot be asked>
//	cert <host> <notAfter, unix seconds> <serial> | cert <host> -
//	certerr <message>
//
// Certificates (ingress.tls, hosts in $CERTS) are read through the
// bakery-sudo helper: certbot keeps them where only root may look.
const appObserveScript = `d=/var/lib/bakery/apps/$APP
if [ -f "$d/state.json" ]; then printf 'state '; tr -d '\n' < "$d/state.json"; echo; fi
for s in blue green; do
  st=$(systemctl show -p ActiveState --value "bakery-$APP-$s.service" 2>/dev/null) || st=unknown
  echo "unit $s ${st:-unknown}"
done
if [ "$RUNTIME" = docker ] || grep -qs '"dockerized": true' "$d/state.json"; then
  if ! command -v docker >/dev/null 2>&1; then
    echo "docker-error docker is not installed on this node (install-node-agent.sh installs it unless --no-docker)"
  elif ! imgs=$(docker image ls --format '{{.Tag}}' "bakery/$APP" 2>&1); then
    echo "docker-error $(printf '%s' "$imgs" | head -n 1)"
  else
    echo docker
    for t in $imgs; do echo "image $t"; done
    docker inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.Config.Image}} {{or (index .Config.Labels "bakery.commit") "-"}} {{or (index .Config.Labels "bakery.revision") "-"}}' "bakery-$APP-blue" "bakery-$APP-green" 2>/dev/null | sed 's/^/container /'
  fi
fi
site=/etc/nginx/conf.d/bakery-$APP.conf
if [ -f "$site" ]; then echo "site $(sha256sum < "$site" | cut -d' ' -f1)"; else echo "site -"; fi
if [ -d "$d/releases" ]; then
  for r in "$d"/releases/*; do
    [ -d "$r" ] || continue
    b=-; [ -f "$r/.bakery-built" ] && b=$(cat "$r/.bakery-built")
    echo "release ${r##*/} ${b:--}"
  done
fi
if [ -d "$d/repo.git" ]; then git --git-dir="$d/repo.git" for-each-ref --format='have %(objectname)' refs/bakery/ 2>/dev/null; fi
for f in /var/lib/bakery/apps/*/state.json; do
  [ -f "$f" ] || continue
  [ "$f" = "$d/state.json" ] && continue
  printf 'other '; tr -d '\n' < "$f"; echo
done
ss -Hltn 2>/dev/null | awk '{n=split($4, a, ":"); print "listen " a[n]}'
if [ -n "$CERTS" ]; then
  if c=$(sudo -n ` + nf.SudoHelper + ` cert-info $CERTS 2>/dev/null); then printf '%s\n' "$c"
  else echo "certerr the node's bakery-sudo helper cannot report certificates (cert-info): re-run install-node-agent.sh on it"; fi
fi
exit 0
`

// AppObservation is Observed plus what source delivery needs.
type AppObservation struct {
	Observed
	// Haves are the commits the node's repository already holds.
	Haves []string
	// Listening are the TCP ports something listens on.
	Listening map[int]bool
	// Docker says the app's containers and images were observed (runtime
	// docker): Units then holds the containers' states.
	Docker bool
	// Containers holds the slots' containers as docker inspect showed them.
	Containers map[string]Container
	// Images holds the tags of the app's images (one per built release).
	Images map[string]bool
}

// Container is one slot's docker container as observed.
type Container struct {
	Status string // docker's State.Status: running, exited, restarting, …
	Health string // State.Health.Status ("" without a HEALTHCHECK)
	Image  string // the image reference it was created from
	Commit string // its bakery.commit label
	// Revision is its bakery.revision label.
	Revision string
}

// ObserveApp observes app on one node in one round trip (its docker
// containers too when its state file says it is dockerized).
func ObserveApp(ctx context.Context, ex sshexec.Executor, app string, timeout time.Duration) (AppObservation, error) {
	return ObserveAppRuntime(ctx, ex, app, "", timeout)
}

// ObserveAppRuntime is ObserveApp for an app of the given runtime: with
// runtime docker, its containers and images are observed in the same
// round trip, and so are the certificates of certHosts (validated host
// names, ingress.tls).
func ObserveAppRuntime(ctx context.Context, ex sshexec.Executor, app, runtime string, timeout time.Duration, certHosts ...string) (AppObservation, error) {
	res, err := ex.Run(ctx, sshexec.Command{Script: appObserveScript, Env: map[string]string{"APP": app, "RUNTIME": runtime, "CERTS": strings.Join(certHosts, " ")}, Timeout: timeout})
	if err != nil {
		return AppObservation{}, err
	}
	return ParseAppObservation(string(res.Stdout))
}

// ParseAppObservation parses the output of the app observe script.
func ParseAppObservation(out string) (AppObservation, error) {
	o := AppObservation{Listening: map[int]bool{}, Containers: map[string]Container{}, Images: map[string]bool{}, Observed: Observed{
		Units:     map[string]string{},
		Releases:  map[string]string{},
		UsedPorts: map[int]bool{},
		Certs:     map[string]Cert{},
	}}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if err := o.parseLine(sc.Text()); err != nil {
			return o, err
		}
	}
	if o.Docker {
		o.dockerUnits()
	}
	o.listeningUsed()
	return o, sc.Err()
}

// parseLine parses one line of the observe script's output into o.
func (o *AppObservation) parseLine(line string) error {
	kind, rest, _ := strings.Cut(line, " ")
	switch kind {
	case "state":
		st, err := nf.ParseState([]byte(rest))
		if err != nil {
			return err
		}
		o.State = st
	case "unit":
		slot, state, _ := strings.Cut(rest, " ")
		if slot == nf.Blue || slot == nf.Green {
			o.Units[slot] = state
		}
	case "site":
		if rest != "-" {
			o.SiteHash = rest
		}
	case "release":
		commit, built, _ := strings.Cut(rest, " ")
		if built == "-" {
			built = ""
		}
		o.Releases[commit] = built
	case "have":
		o.Haves = append(o.Haves, rest)
	case "other":
		o.otherApp(rest)
	case "listen":
		if p, err := strconv.Atoi(rest); err == nil {
			o.Listening[p] = true
		}
	case "docker":
		o.Docker = true
	case "docker-error":
		return fmt.Errorf("docker: %s", rest)
	case "image":
		o.Images[rest] = true
	case "container":
		return o.parseContainer(line, rest)
	case "cert":
		host, c, ok, err := parseCertLine(rest)
		if err != nil {
			return err
		}
		if ok {
			o.Certs[host] = c
		}
	case "certerr":
		return fmt.Errorf("observe certificates: %s", rest)
	case "":
	default:
		return fmt.Errorf("unexpected observe output %q", truncate(line, 100))
	}
	return nil
}

// otherApp counts the ports in another app's state file as used.
func (o *AppObservation) otherApp(stateJSON string) {
	var other nf.AppState
	if err := json.Unmarshal([]byte(stateJSON), &other); err != nil {
		return // another app's broken state file is its own problem
	}
	for _, s := range other.Slots {
		if s.Port != 0 {
			o.UsedPorts[s.Port] = true
		}
	}
}

// parseContainer parses a "container" line (docker inspect of a slot's
// container).
func (o *AppObservation) parseContainer(line, rest string) error {
	f := strings.Fields(rest)
	if len(f) == 0 {
		return nil // docker inspect prints an empty line when no container exists
	}
	if len(f) != 6 {
		return fmt.Errorf("unexpected observe output %q", truncate(line, 100))
	}
	name := strings.TrimPrefix(f[0], "/")
	for _, slot := range nf.Slots {
		if strings.HasSuffix(name, "-"+slot) {
			c := Container{Status: f[1], Image: f[3], Commit: f[4], Revision: f[5]}
			if f[2] != "-" {
				c.Health = f[2]
			}
			o.Containers[slot] = c
		}
	}
	return nil
}

// listeningUsed counts a port something listens on as used, unless it is
// one of this app's own slots (which may be running).
func (o *AppObservation) listeningUsed() {
	own := map[int]bool{}
	if o.State != nil {
		for _, s := range o.State.Slots {
			own[s.Port] = true
		}
	}
	for p := range o.Listening {
		if !own[p] {
			o.UsedPorts[p] = true
		}
	}
}

// dockerUnits puts the containers' states where Plan reads the units'
// (running → active) and counts a release as built only while its image
// exists: an image removed behind Bakery's back is rebuilt, and a rollback
// to a release whose image is still there rebuilds nothing.
func (o *AppObservation) dockerUnits() {
	for _, slot := range nf.Slots {
		c, ok := o.Containers[slot]
		var st string
		switch {
		case !ok:
			st = "absent"
		case o.State != nil && o.State.Slots[slot].Commit != "" && c.Commit != o.State.Slots[slot].Commit:
			// Not the container Bakery started for the slot.
			st = "replaced"
		case c.Status == "running" && c.Health == "unhealthy":
			st = "unhealthy"
		case c.Status == "running":
			st = "active"
		case c.Status == "restarting":
			st = "activating"
		default:
			st = c.Status
		}
		o.Units[slot] = st
	}
	for rel := range o.Releases {
		if !o.Images[rel] {
			o.Releases[rel] = ""
		}
	}
}

// truncate cuts s to n bytes, marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// target is one node the deployment runs on (or is being removed from).
type target struct {
	node   *api.Node
	via    *api.Node
	remove bool
}

// selectNodes returns the nodes the deployment should run on, sorted by
// name, and the names it names that do not exist.
func (r *Reconciler) selectNodes(ctx context.Context, d *api.Deployment) ([]target, []string, error) {
	all, err := r.Store.List(ctx, api.KindNode, store.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	byName := map[string]*api.Node{}
	for _, o := range all {
		n := o.(*api.Node)
		byName[n.Metadata.Name] = n
	}
	want := map[string]bool{}
	var missing []string
	for _, name := range d.Spec.Nodes {
		if _, ok := byName[name]; ok {
			want[name] = true
		} else {
			missing = append(missing, name)
		}
	}
	if len(d.Spec.NodeSelector) > 0 {
		sel := api.SelectorFromMap(d.Spec.NodeSelector)
		for name, n := range byName {
			if sel.Matches(n.Metadata.Labels) {
				want[name] = true
			}
		}
	}
	var out []target
	for name := range want {
		n := byName[name]
		out = append(out, target{node: n, via: byName[n.Spec.Via]})
	}
	// Nodes the app ran on that are no longer selected: remove it there.
	for _, ns := range d.Status.Nodes {
		if n, ok := byName[ns.Node]; ok && !want[ns.Node] {
			out = append(out, target{node: n, via: byName[n.Spec.Via], remove: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node.Metadata.Name < out[j].node.Metadata.Name })
	return out, missing, nil
}

// observe observes every target node in one round trip each, at once,
// and plans what each must do. A node that cannot be observed (or
// planned) has its error in the plan's errs.
func (r *Reconciler) observe(ctx context.Context, d *api.Deployment, rv *revision, targets []target, missing []string) *rolloutPlan {
	p := &rolloutPlan{targets: targets, runs: make([]*nodeRun, len(targets)), plans: make([][]Action, len(targets)),
		errs: make([]error, len(targets)), commit: rv.commit, revision: rv.revision, specHash: rv.specHash,
		trigger: rv.trigger, by: rv.by, deployRequest: rv.deployRequest, missing: missing, restart: d.Status.Restart,
		repairOf: rv.repairOf, secrets: rv.env.secret}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.runs[i], p.plans[i], p.errs[i] = r.observeNode(ctx, d, rv, t)
		}()
	}
	wg.Wait()
	return p
}

// observeNode observes the app on one node and plans the node's actions
// (plan step: planWithReservations). The node's run is nil when it could
// not be observed.
func (r *Reconciler) observeNode(ctx context.Context, d *api.Deployment, rv *revision, t target) (*nodeRun, []Action, error) {
	n := r.newNodeRun(d, rv, t)
	var certHosts []string
	if !t.remove {
		certHosts = tlsHosts(&d.Spec)
	}
	obs, err := ObserveAppRuntime(ctx, n.ex, n.app, d.Spec.Runtime, 30*time.Second, certHosts...)
	if err != nil {
		return nil, nil, fmt.Errorf("observe %s: %w", n.node, err)
	}
	n.obs = obs
	n.prev = previousRuntime(&d.Spec, obs)
	plan, err := r.planWithReservations(ctx, n, obs.Observed)
	return n, plan, err
}

// newNodeRun returns the run of the app on one node, with what the node
// should run (Desired).
func (r *Reconciler) newNodeRun(d *api.Deployment, rv *revision, t target) *nodeRun {
	n := &nodeRun{node: t.node.Metadata.Name, app: d.Metadata.Name, spec: &d.Spec, env: maps.Clone(rv.env.env),
		ex: r.Connector.Executor(t.node, t.via), mirrors: r.Mirrors, timeout: r.stepTimeout(), acme: r.acmeServer(&d.Spec)}
	n.desired = Desired{App: d.Metadata.Name, Commit: rv.commit, Revision: rv.revision, SpecHash: rv.specHash, BuildHash: rv.buildHash,
		PortMin: r.portMin(), PortMax: r.portMax(), PortStart: r.portStart(d.Metadata.Name), KeepReleases: d.Spec.KeepReleases, Remove: t.remove, NewSlot: rv.restart,
		TLSHosts: tlsHosts(&d.Spec), RenewBefore: r.renewBefore(), Now: time.Now(), RepairOnly: rv.repairOf != nil}
	if d.Spec.Run.Port != nil {
		n.desired.PinnedPort = *d.Spec.Run.Port
	}
	n.desired.SiteHash = func(slot string, port int) string { return r.ingress().Hash(n, slot, port) }
	return n
}

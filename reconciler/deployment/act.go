package deployment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/source"
	"bakery.dev/bakery/sshexec"
)

// SHA256Hex returns the hex SHA-256 of s (what `sha256sum` prints).
func SHA256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// sudo is how scripts call the node's bakery-sudo helper.
const sudo = "sudo -n " + nf.SudoHelper

// Runtime is how a slot's process is installed, started and stopped on a
// node. The systemd runtime is the one implemented here; docker slots in
// behind the same interface.
type Runtime interface {
	// Install writes what the slot needs to start (unit, env and run files).
	Install(ctx context.Context, n *nodeRun, a Action) error
	// Start (re)starts the slot and makes it start at boot.
	Start(ctx context.Context, n *nodeRun, a Action) error
	// Stop stops the slot and keeps it from starting at boot.
	Stop(ctx context.Context, n *nodeRun, slot string) error
	// Remove deletes everything the runtime installed for the app.
	Remove(ctx context.Context, n *nodeRun) error
}

// Ingress routes traffic to the active slot.
type Ingress interface {
	// Switch points traffic at slot's port, reloads the proxy and returns
	// once the proxy really sends requests there. Hosts with a
	// certificate (n.obs.Certs) are served over HTTPS.
	Switch(ctx context.Context, n *nodeRun, slot string, port int) error
	// Certificate obtains host's certificate (ingress.tls), serving the
	// ACME challenge first, and records it in n.obs.Certs.
	Certificate(ctx context.Context, n *nodeRun, host string) error
	// Renew renews host's certificate, reloads the proxy and records the
	// new certificate in n.obs.Certs.
	Renew(ctx context.Context, n *nodeRun, host string) error
	// Remove deletes the app's routing.
	Remove(ctx context.Context, n *nodeRun) error
	// Hash returns the hash of the site generated for slot's port, as
	// the observe script reports it, once every TLS host has its
	// certificate.
	Hash(n *nodeRun, slot string, port int) string
}

// nodeRun carries what actions on one node need.
type nodeRun struct {
	node    string
	app     string
	spec    *api.DeploymentSpec
	env     map[string]string // the app's environment (from the spec)
	desired Desired
	obs     AppObservation
	ex      sshexec.Executor
	mirrors *source.Mirrors
	log     func(stream, text string) // rollout log
	timeout time.Duration             // per step
	// prev is the runtime the app ran under on this node when it differs
	// from the spec's (the runtime was changed): slots this run did not
	// install are stopped, and a removal cleaned up, with it too.
	prev      Runtime
	installed map[string]bool // slots installed by this run
	// acme is the ACME directory URL certificates come from.
	acme string
}

// run runs a script on the node, streaming its output into the rollout log.
func (n *nodeRun) run(ctx context.Context, script string, env map[string]string, stdin []byte) (sshexec.Result, error) {
	cmd := sshexec.Command{
		Script:  script,
		Env:     env,
		Timeout: n.timeout,
		Sink: sshexec.SinkFunc(func(l sshexec.Line) {
			n.log(l.Stream.String(), l.Text)
		}),
	}
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	return n.ex.Run(ctx, cmd)
}

func (n *nodeRun) logf(format string, args ...any) {
	n.log(api.StreamBakery, fmt.Sprintf(format, args...))
}

// act executes one action.
func (n *nodeRun) act(ctx context.Context, rt Runtime, ing Ingress, a Action) error {
	switch a.Type {
	case ActFetch:
		return n.fetch(ctx, a.Commit)
	case ActBuild:
		if b, ok := rt.(builder); ok {
			return b.Build(ctx, n, a.Commit, a.Release)
		}
		return n.build(ctx, a.Commit, a.Release)
	case ActInstall:
		if n.installed == nil {
			n.installed = map[string]bool{}
		}
		n.installed[a.Slot] = true
		return rt.Install(ctx, n, a)
	case ActStart:
		if err := rt.Start(ctx, n, a); err != nil {
			return err
		}
		n.obs.Units[a.Slot] = "active"
		return nil
	case ActHealth:
		return n.health(ctx, a.Slot, a.Port)
	case ActSwitch:
		if err := ing.Switch(ctx, n, a.Slot, a.Port); err != nil {
			return err
		}
		n.obs.SiteHash = ing.Hash(n, a.Slot, a.Port)
		return n.writeState(ctx, a)
	case ActDrain:
		return n.drain(ctx, a.Slot)
	case ActStop:
		return n.stop(ctx, rt, a.Slot)
	case ActSite:
		if err := ing.Switch(ctx, n, a.Slot, a.Port); err != nil {
			return err
		}
		n.obs.SiteHash = ing.Hash(n, a.Slot, a.Port)
		return nil
	case ActPrune:
		return n.pruneReleases(ctx, rt)
	case ActCert:
		return ing.Certificate(ctx, n, a.Host)
	case ActRenew:
		return ing.Renew(ctx, n, a.Host)
	case ActRemove:
		return n.removeApp(ctx, rt, ing)
	}
	return fmt.Errorf("unknown action %q", a.Type)
}

// drain waits the strategy's drain time before the old slot stops.
func (n *nodeRun) drain(ctx context.Context, slot string) error {
	d := n.spec.Strategy.Drain.Duration
	n.logf("draining %s slot for %s", slot, d)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// stop stops a slot, under the runtime the app ran under before when the
// slot was not installed by this rollout.
func (n *nodeRun) stop(ctx context.Context, rt Runtime, slot string) error {
	if n.prev != nil && !n.installed[slot] {
		rt = n.prev // a slot of the runtime the app ran under before
	}
	if err := rt.Stop(ctx, n, slot); err != nil {
		return err
	}
	n.obs.Units[slot] = "inactive"
	return nil
}

// pruneReleases deletes old releases, and old images under docker.
func (n *nodeRun) pruneReleases(ctx context.Context, rt Runtime) error {
	if err := n.prune(ctx); err != nil {
		return err
	}
	if p, ok := rt.(imagePruner); ok {
		return p.PruneImages(ctx, n)
	}
	return nil
}

// removeApp removes the app from the node: its slots (under both
// runtimes when it changed), its site and its directory.
func (n *nodeRun) removeApp(ctx context.Context, rt Runtime, ing Ingress) error {
	if err := rt.Remove(ctx, n); err != nil {
		return err
	}
	if n.prev != nil {
		if err := n.prev.Remove(ctx, n); err != nil {
			return err
		}
	}
	if err := ing.Remove(ctx, n); err != nil {
		return err
	}
	_, err := n.run(ctx, `rm -rf "$D"`, map[string]string{"D": nf.AppDir(n.app)}, nil)
	return err
}

func (n *nodeRun) fetch(ctx context.Context, commit string) error {
	bundle, size, cleanup, err := n.mirrors.Bundle(ctx, n.spec.Source.Repo, commit, n.obs.Haves)
	if errors.Is(err, source.ErrUpToDate) {
		n.logf("node already has commit %s", short(commit))
		return nil
	}
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer cleanup()
	if _, err := n.run(ctx, `mkdir -p "$D" && chmod 755 "$D"`, map[string]string{"D": nf.AppDir(n.app)}, nil); err != nil {
		return err
	}
	f, err := os.Open(bundle)
	if err != nil {
		return err
	}
	defer f.Close()
	remote := path.Join(nf.AppDir(n.app), ".incoming-"+commit+".bundle")
	n.logf("shipping commit %s to the node (%d bytes)", short(commit), size)
	if err := n.ex.WriteFile(ctx, sshexec.File{Path: remote, Mode: 0o600, Reader: f, Size: size}); err != nil {
		return fmt.Errorf("upload bundle: %w", err)
	}
	_, err = n.run(ctx, source.NodeFetchScript(nf.RepoDir(n.app), remote, commit), nil, nil)
	return err
}

// buildScript checks the release out and runs the spec's commands in it.
// The commands come in through the environment (never quoted into the
// script); the marker is written only when every command succeeded.
const buildScript = `set -e
cd "$BAKERY_RELEASE"
rm -f .bakery-built
for step in install test build; do
  case $step in
    install) c=$BAKERY_STEP_INSTALL ;;
    test) c=$BAKERY_STEP_TEST ;;
    build) c=$BAKERY_STEP_BUILD ;;
  esac
  [ -n "$c" ] || continue
  echo "bakery: running $step: $c" >&2
  if ! sh -c "$c"; then echo "bakery: $step failed" >&2; exit 1; fi
done
printf '%s' "$BAKERY_BUILD_HASH" > .bakery-built
`

// checkout checks commit out into the release's directory.
func (n *nodeRun) checkout(ctx context.Context, commit, release string) error {
	rel := nf.ReleaseDir(n.app, release)
	if _, err := n.run(ctx, `mkdir -p "$R"`+"\n"+source.NodeCheckoutScript(nf.RepoDir(n.app), rel, commit), map[string]string{"R": nf.ReleasesDir(n.app)}, nil); err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	return nil
}

func (n *nodeRun) build(ctx context.Context, commit, release string) error {
	rel := nf.ReleaseDir(n.app, release)
	if err := n.checkout(ctx, commit, release); err != nil {
		return err
	}
	env := map[string]string{}
	for k, v := range n.env {
		env[k] = v
	}
	env["BAKERY_RELEASE"] = rel
	env["BAKERY_STEP_INSTALL"] = n.spec.Build.Install
	env["BAKERY_STEP_TEST"] = n.spec.Build.Test
	env["BAKERY_STEP_BUILD"] = n.spec.Build.Build
	env["BAKERY_BUILD_HASH"] = n.desired.BuildHash
	_, err := n.run(ctx, buildScript, env, nil)
	return err
}

const healthScript = `url="http://127.0.0.1:$PORT$HPATH"
start=$(date +%s)
fails=0
while :; do
  if out=$(curl -fsS -o /dev/null -w '%{http_code}' -m "$TIMEOUT" "$url" 2>&1); then
    if [ -n "$UNIT" ]; then
      # The answer must come from this slot's unit, not from another
      # process that holds the port.
      pids=$(ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
      mine=
      for p in $pids; do grep -q "/$UNIT\$" "/proc/$p/cgroup" 2>/dev/null && mine=1; done
      if [ -n "$pids" ] && [ -z "$mine" ]; then
        echo "bakery: $url answers, but not from $UNIT: port $PORT is held by another process (pid $pids)" >&2; exit 1
      fi
    fi
    if [ -n "$CONTAINER" ]; then
      # The answer must come from this slot's container, running.
      st=$(docker inspect --format '{{.State.Running}}' "$CONTAINER" 2>&1)
      if [ "$st" != true ]; then
        echo "bakery: $url answers, but container $CONTAINER is not running ($st)" >&2; exit 1
      fi
    fi
    echo "bakery: health check passed: $url answered $out"; exit 0
  fi
  now=$(date +%s)
  if [ $((now - start)) -ge "$GRACE" ]; then
    fails=$((fails + 1))
    echo "bakery: health check $fails/$RETRIES failed: $url: $out" >&2
    if [ "$fails" -ge "$RETRIES" ]; then
      if [ -n "$CONTAINER" ]; then
        echo "bakery: container $CONTAINER: $(docker inspect --format '{{.State.Status}}, exit code {{.State.ExitCode}}' "$CONTAINER" 2>&1); its last log lines:" >&2
        docker logs --tail 20 "$CONTAINER" 2>&1 | sed 's/^/  /' >&2
      fi
      exit 1
    fi
  fi
  sleep "$INTERVAL"
done
`

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func (n *nodeRun) health(ctx context.Context, slot string, port int) error {
	h := n.spec.HealthCheck
	unit, container := nf.UnitName(n.app, slot), ""
	if isDocker(n.spec) {
		unit, container = "", nf.ContainerName(n.app, slot)
	}
	env := map[string]string{
		"UNIT":      unit,
		"CONTAINER": container,
		"PORT":      strconv.Itoa(port),
		"HPATH":     h.Path,
		"TIMEOUT":   seconds(h.Timeout.Duration),
		"INTERVAL":  seconds(h.Interval.Duration),
		"RETRIES":   strconv.Itoa(h.Retries),
		"GRACE":     strconv.Itoa(int(h.StartPeriod.Duration.Seconds())),
	}
	_, err := n.run(ctx, healthScript, env, nil)
	if err != nil {
		return fmt.Errorf("health check of port %d failed: %w", port, err)
	}
	return nil
}

func (n *nodeRun) writeState(ctx context.Context, a Action) error {
	st := &nf.AppState{App: n.app, Slots: map[string]nf.SlotState{}}
	if n.obs.State != nil {
		for k, v := range n.obs.State.Slots {
			st.Slots[k] = v
		}
	}
	st.Active = a.Slot
	st.Revision = n.desired.Revision
	st.Dockerized = isDocker(n.spec)
	st.Slots[a.Slot] = nf.SlotState{Commit: a.Commit, Release: a.Release, Port: a.Port, Revision: n.desired.Revision, SpecHash: n.desired.SpecHash}
	n.obs.State = st
	return n.ex.WriteFile(ctx, sshexec.File{Path: nf.StatePath(n.app), Mode: 0o644, Content: st.Marshal()})
}

// prune removes releases beyond keepReleases, never one a slot uses.
func (n *nodeRun) prune(ctx context.Context) error {
	keep := map[string]bool{}
	if n.obs.State != nil {
		for _, s := range n.obs.State.Slots {
			keep[s.Release] = true
			keep[s.Commit] = true // a release directory named by its commit alone
		}
	}
	keep[nf.ReleaseID(n.desired.Commit, n.desired.BuildHash)] = true
	var others []string
	for c := range n.obs.Releases {
		if !keep[c] {
			others = append(others, c)
		}
	}
	sort.Strings(others)
	budget := n.desired.KeepReleases - len(keep)
	if budget < 0 {
		budget = 0
	}
	if len(others) <= budget {
		return nil
	}
	// Keep the newest others by mtime, on the node.
	env := map[string]string{"R": nf.ReleasesDir(n.app), "KEEP": strconv.Itoa(budget)}
	var protect []string
	for c := range keep {
		protect = append(protect, c)
	}
	sort.Strings(protect)
	env["PROTECT"] = strings.Join(protect, " ")
	_, err := n.run(ctx, `cd "$R" || exit 0
n=0
for r in $(ls -1t); do
  case " $PROTECT " in *" $r "*) continue ;; esac
  n=$((n + 1))
  if [ "$n" -gt "$KEEP" ]; then echo "bakery: pruning release $r"; rm -rf "./$r"; fi
done
`, env, nil)
	return err
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// systemdRuntime runs slots as systemd units through bakery-sudo.
type systemdRuntime struct{}

func (systemdRuntime) Install(ctx context.Context, n *nodeRun, a Action) error {
	runDir := path.Dir(nf.RunScriptPath(n.app, a.Slot))
	if _, err := n.run(ctx, `mkdir -p "$E" && chmod 700 "$E" && `+sudo+` env-install "$APP" "$SLOT" >/dev/null`,
		map[string]string{"E": runDir, "APP": n.app, "SLOT": a.Slot}, []byte(nf.EnvFile(n.env))); err != nil {
		return fmt.Errorf("env file: %w", err)
	}
	if err := n.ex.WriteFile(ctx, sshexec.File{Path: nf.RunScriptPath(n.app, a.Slot), Mode: 0o700, Content: []byte(nf.RunScript(n.spec.Run.Command))}); err != nil {
		return fmt.Errorf("run script: %w", err)
	}
	unit := nf.Unit(nf.Slot{App: n.app, Slot: a.Slot, Commit: a.Commit, Release: a.Release, Port: a.Port})
	_, err := n.run(ctx, sudo+` unit-install "$APP" "$SLOT" && `+sudo+` daemon-reload`,
		map[string]string{"APP": n.app, "SLOT": a.Slot}, []byte(unit))
	return err
}

func (systemdRuntime) Start(ctx context.Context, n *nodeRun, a Action) error {
	_, err := n.run(ctx, sudo+` systemctl reset-failed "$APP" "$SLOT" >/dev/null 2>&1; `+
		sudo+` systemctl enable "$APP" "$SLOT" 2>/dev/null; `+sudo+` systemctl restart "$APP" "$SLOT"`,
		map[string]string{"APP": n.app, "SLOT": a.Slot}, nil)
	return err
}

func (systemdRuntime) Stop(ctx context.Context, n *nodeRun, slot string) error {
	_, err := n.run(ctx, sudo+` systemctl disable "$APP" "$SLOT" 2>/dev/null; `+sudo+` systemctl stop "$APP" "$SLOT"`,
		map[string]string{"APP": n.app, "SLOT": slot}, nil)
	return err
}

func (systemdRuntime) Remove(ctx context.Context, n *nodeRun) error {
	_, err := n.run(ctx, `for s in blue green; do
  `+sudo+` systemctl disable "$APP" "$s" 2>/dev/null
  `+sudo+` systemctl stop "$APP" "$s" || true
  `+sudo+` unit-remove "$APP" "$s"
  `+sudo+` env-remove "$APP" "$s"
done
`+sudo+` daemon-reload`, map[string]string{"APP": n.app}, nil)
	return err
}

// nginxIngress writes the app's nginx site through bakery-sudo.
type nginxIngress struct{}

// site renders the app's site; with goal, as it is once every TLS host
// has its certificate, else for the certificates known now.
func (g nginxIngress) site(n *nodeRun, slot string, port int, goal bool) string {
	s := nf.Site{App: n.app, Slot: slot, Port: port, CertHosts: g.certHosts(n, goal)}
	if n.spec.Ingress != nil {
		s.Hosts = n.spec.Ingress.Hosts
		s.TLS = n.spec.Ingress.TLS != nil
	}
	return nf.NginxSite(s)
}

// certHosts are the TLS hosts served over HTTPS: those with a certificate
// on the node, or with goal every one.
func (nginxIngress) certHosts(n *nodeRun, goal bool) []string {
	var out []string
	for _, h := range tlsHosts(n.spec) {
		if _, ok := n.obs.Certs[h]; ok || goal {
			out = append(out, h)
		}
	}
	return out
}

func (g nginxIngress) Hash(n *nodeRun, slot string, port int) string {
	return SHA256Hex(g.site(n, slot, port, true))
}

// switchScript installs the site, reloads nginx, then waits until nginx
// answers from the new slot (its X-Bakery-Slot header): a reload returns
// before the new workers take over, and the old slot must not be stopped
// while old workers still send to it.
const switchScript = sudo + ` nginx-site-install "$APP" && ` + sudo + ` nginx-reload || exit 1
# With TLS, every host with a certificate must answer over HTTPS from the
# site just written (its token), else HOST over HTTP.
probe() {
  if [ -n "$TOKEN" ]; then
    # The certificate need not verify here: only which site answers counts.
    curl -s -k -o /dev/null -D - -m 2 --resolve "$1:443:127.0.0.1" "https://$1$HPATH"
  else
    curl -s -o /dev/null -D - -m 2 -H "Host: $1" "http://127.0.0.1:80$HPATH"
  fi
}
serves() {
  h=$(probe "$1" 2>/dev/null | tr -d '\r')
  printf '%s\n' "$h" | grep -qix "x-bakery-slot: $APP/$SLOT" || return 1
  [ -z "$TOKEN" ] || printf '%s\n' "$h" | grep -qix "x-bakery-site: $TOKEN"
}
i=0
while [ $i -lt 200 ]; do
  all=1
  for h in $HOSTS; do serves "$h" || { all=; break; }; done
  if [ -n "$all" ]; then
    echo "bakery: nginx now serves from the $SLOT slot"; exit 0
  fi
  i=$((i + 1)); sleep 0.05
done
echo "bakery: nginx did not switch to the $SLOT slot within 10s" >&2
exit 1
`

func (g nginxIngress) Switch(ctx context.Context, n *nodeRun, slot string, port int) error {
	n.logf("pointing nginx at the %s slot (port %d)", slot, port)
	hosts, token := []string{n.app}, ""
	if n.spec.Ingress != nil && len(n.spec.Ingress.Hosts) > 0 {
		hosts = n.spec.Ingress.Hosts[:1]
		if certHosts := g.certHosts(n, false); len(certHosts) > 0 {
			hosts, token = certHosts, nf.SiteToken(certHosts)
		}
	}
	_, err := n.run(ctx, switchScript,
		map[string]string{"APP": n.app, "SLOT": slot, "HOSTS": strings.Join(hosts, " "), "HPATH": n.spec.HealthCheck.Path, "TOKEN": token}, []byte(g.site(n, slot, port, false)))
	return err
}

func (nginxIngress) Remove(ctx context.Context, n *nodeRun) error {
	_, err := n.run(ctx, `if [ "$(`+sudo+` nginx-site-remove "$APP")" = removed ]; then `+sudo+` nginx-reload; fi`,
		map[string]string{"APP": n.app}, nil)
	return err
}

package deployment

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

// dockerStopTimeout is how long `docker stop` waits for a slot's
// container to exit after SIGTERM before it kills it (seconds). Traffic has
// left the slot by then (switch and drain come first).
const dockerStopTimeout = 10

// builder is a Runtime that builds releases itself (ActBuild).
type builder interface {
	Build(ctx context.Context, n *nodeRun, commit, release string) error
}

// imagePruner is a Runtime that prunes what it built beyond keepReleases.
type imagePruner interface {
	PruneImages(ctx context.Context, n *nodeRun) error
}

// dockerRuntime runs slots as docker containers named bakery-APP-SLOT,
// built on the node from the release directory (runtime docker). It talks
// to dockerd as bakery-agent, a member of the docker group (which is
// root-equivalent on the node; see the README).
type dockerRuntime struct{}

var (
	_ Runtime     = dockerRuntime{}
	_ builder     = dockerRuntime{}
	_ imagePruner = dockerRuntime{}
)

// dockerBuildScript checks nothing out (the caller did): it builds the
// release's image. Every value comes in through the environment; the build
// arguments as BA_0..BA_<NARGS-1>, each "NAME=value".
const dockerBuildScript = `set -e
cd "$BAKERY_RELEASE"
rm -f .bakery-built
[ -f "$DOCKERFILE" ] || { echo "bakery: $DOCKERFILE not found in commit $COMMIT" >&2; exit 1; }
set -- --build-arg "BAKERY_COMMIT=$COMMIT"
i=0
while [ "$i" -lt "$NARGS" ]; do
  eval "a=\$BA_$i"
  set -- "$@" --build-arg "$a"
  i=$((i + 1))
done
echo "bakery: docker build -f $DOCKERFILE -t $IMAGE" >&2
if ! docker build --force-rm -f "$DOCKERFILE" -t "$IMAGE" --label "bakery.app=$APP" --label "bakery.commit=$COMMIT" "$@" .; then
  echo "bakery: docker build failed" >&2; exit 1
fi
printf '%s' "$BAKERY_BUILD_HASH" > .bakery-built
`

func (dockerRuntime) Build(ctx context.Context, n *nodeRun, commit, release string) error {
	if err := n.checkout(ctx, commit, release); err != nil {
		return err
	}
	d := n.docker()
	env := map[string]string{
		"BAKERY_RELEASE":    nf.ReleaseDir(n.app, release),
		"BAKERY_BUILD_HASH": n.desired.BuildHash,
		"DOCKERFILE":        d.Dockerfile,
		"IMAGE":             nf.ImageRef(n.app, release),
		"APP":               n.app,
		"COMMIT":            commit,
	}
	keys := make([]string, 0, len(d.BuildArgs))
	for k := range d.BuildArgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		env["BA_"+strconv.Itoa(i)] = k + "=" + d.BuildArgs[k]
	}
	env["NARGS"] = strconv.Itoa(len(keys))
	_, err := n.run(ctx, dockerBuildScript, env, nil)
	return err
}

func (dockerRuntime) Install(ctx context.Context, n *nodeRun, a Action) error {
	env := map[string]string{}
	for k, v := range n.env {
		env[k] = v
	}
	env["PORT"] = strconv.Itoa(a.Port)
	content, err := nf.DockerEnvFile(env)
	if err != nil {
		return err
	}
	p := nf.DockerEnvPath(n.app, a.Slot)
	if _, err := n.run(ctx, `mkdir -p "$E" && chmod 700 "$E"`, map[string]string{"E": path.Dir(p)}, nil); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if err := n.ex.WriteFile(ctx, sshexec.File{Path: p, Mode: 0o600, Content: []byte(content)}); err != nil {
		return fmt.Errorf("env file: %w", err)
	}
	return nil
}

// dockerStartScript (re)creates the slot's container from the release's
// image. The environment reaches it only through the env file; the
// published port listens on the node's loopback only (nginx proxies).
const dockerStartScript = `docker rm -f "$NAME" >/dev/null 2>&1 || true
if [ "$NETWORK" = host ]; then set -- --network host; else set -- --publish "127.0.0.1:$PORT:$PORT"; fi
set -- "$@" "$IMAGE"
if [ -n "$CMD" ]; then set -- "$@" /bin/sh -c "$CMD"; fi
docker run --detach --name "$NAME" --init --restart unless-stopped --stop-timeout "$STOP" \
  --env-file "$ENVFILE" --log-opt max-size=10m --log-opt max-file=3 \
  --label "bakery.app=$APP" --label "bakery.slot=$SLOT" --label "bakery.commit=$COMMIT" \
  --label "bakery.release=$RELEASE" --label "bakery.revision=$REVISION" "$@" >/dev/null || exit 1
echo "bakery: started container $NAME from $IMAGE"
`

func (dockerRuntime) Start(ctx context.Context, n *nodeRun, a Action) error {
	_, err := n.run(ctx, dockerStartScript, map[string]string{
		"NAME":     nf.ContainerName(n.app, a.Slot),
		"NETWORK":  n.docker().Network,
		"PORT":     strconv.Itoa(a.Port),
		"IMAGE":    nf.ImageRef(n.app, a.Release),
		"CMD":      n.spec.Run.Command,
		"STOP":     strconv.Itoa(dockerStopTimeout),
		"ENVFILE":  nf.DockerEnvPath(n.app, a.Slot),
		"APP":      n.app,
		"SLOT":     a.Slot,
		"COMMIT":   a.Commit,
		"RELEASE":  a.Release,
		"REVISION": strconv.FormatInt(n.desired.Revision, 10),
	}, nil)
	return err
}

// Stop stops the slot's container gracefully (SIGTERM, then SIGKILL after
// dockerStopTimeout) and keeps it, stopped: its restart policy
// (unless-stopped) then keeps it down across dockerd restarts.
func (dockerRuntime) Stop(ctx context.Context, n *nodeRun, slot string) error {
	_, err := n.run(ctx, `if docker container inspect "$NAME" >/dev/null 2>&1; then docker stop --time "$STOP" "$NAME" >/dev/null; fi`,
		map[string]string{"NAME": nf.ContainerName(n.app, slot), "STOP": strconv.Itoa(dockerStopTimeout)}, nil)
	return err
}

func (dockerRuntime) Remove(ctx context.Context, n *nodeRun) error {
	_, err := n.run(ctx, `for s in blue green; do docker rm -f "bakery-$APP-$s" >/dev/null 2>&1 || true; done
imgs=$(docker image ls -q "$REPO" | sort -u)
if [ -n "$imgs" ]; then docker image rm -f $imgs >/dev/null; fi
rm -f "$RUN"/blue.env "$RUN"/green.env
`, map[string]string{"APP": n.app, "REPO": nf.ImageRepo(n.app), "RUN": path.Dir(nf.DockerEnvPath(n.app, nf.Blue))}, nil)
	return err
}

// PruneImages removes the app's images whose release directory is gone
// (release pruning keeps keepReleases of them) and its dangling images.
// An image a container still uses stays (docker refuses without -f).
func (dockerRuntime) PruneImages(ctx context.Context, n *nodeRun) error {
	_, err := n.run(ctx, `for t in $(docker image ls --format '{{.Tag}}' "$REPO"); do
  [ "$t" = "<none>" ] && continue
  [ -d "$R/$t" ] && continue
  if docker image rm "$REPO:$t" >/dev/null 2>&1; then echo "bakery: pruned image $REPO:$t"; else echo "bakery: image $REPO:$t is still in use; kept"; fi
done
docker image prune --force --filter "label=bakery.app=$APP" >/dev/null
`, map[string]string{"APP": n.app, "REPO": nf.ImageRepo(n.app), "R": nf.ReleasesDir(n.app)}, nil)
	return err
}

// docker returns the spec's docker settings (defaulted).
func (n *nodeRun) docker() api.DockerSpec {
	d := api.DockerSpec{Dockerfile: "Dockerfile", Network: "bridge"}
	if n.spec.Docker != nil {
		d = *n.spec.Docker
	}
	return d
}

func isDocker(s *api.DeploymentSpec) bool { return s.Runtime == api.RuntimeDocker }

package deployment

import (
	"context"
	"fmt"
	"strconv"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
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
	_ procRunner  = dockerRuntime{}
	_ procRunner  = systemdRuntime{}
)

// StartProcs runs the slot's processes as containers of the release's
// image (bakery-APP-SLOT-PROC-N) with the slot's env file.
func (dockerRuntime) StartProcs(ctx context.Context, n *nodeRun, a Action) error {
	in := nodescript.DockerProcsInput{App: n.app, Slot: a.Slot, Commit: a.Commit, Release: a.Release, Revision: n.desired.Revision,
		Network: n.docker().Network, Limits: nf.LimitsOf(n.spec)}
	for _, p := range n.spec.Processes {
		in.Procs = append(in.Procs, nodescript.DockerProc{Name: p.Name, Command: p.Command, Replicas: max(p.Replicas, 1), StopTimeoutSec: procStopSeconds(p)})
	}
	_, err := run(ctx, n, nodescript.DockerScaleProcs, in)
	return err
}

// StopProcs stops the slot's process containers (SIGTERM, stopTimeout);
// they stay, stopped, with their logs, until the slot's processes start
// again.
func (dockerRuntime) StopProcs(ctx context.Context, n *nodeRun, slot string) error {
	_, err := run(ctx, n, nodescript.DockerProcsStop, nodescript.SlotInput{App: n.app, Slot: slot})
	return err
}

func (dockerRuntime) Build(ctx context.Context, n *nodeRun, commit, release string) error {
	if err := n.checkout(ctx, commit, release); err != nil {
		return err
	}
	d := n.docker()
	_, err := run(ctx, n, nodescript.DockerBuild, nodescript.DockerBuildInput{App: n.app, Release: release, Commit: commit,
		Dockerfile: d.Dockerfile, BuildArgs: d.BuildArgs, BuildHash: n.desired.BuildHash})
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
	if _, err := run(ctx, n, nodescript.RunDir, nodescript.AppInput{App: n.app}); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if err := n.ex.WriteFile(ctx, sshexec.File{Path: p, Mode: 0o600, Content: []byte(content)}); err != nil {
		return fmt.Errorf("env file: %w", err)
	}
	return nil
}

func (dockerRuntime) Start(ctx context.Context, n *nodeRun, a Action) error {
	_, err := run(ctx, n, nodescript.DockerStart, nodescript.DockerStartInput{App: n.app, Slot: a.Slot, Commit: a.Commit,
		Release: a.Release, Revision: n.desired.Revision, Port: a.Port, Network: n.docker().Network, Command: n.spec.Run.Command,
		StopTimeout: dockerStopTimeout, Limits: nf.LimitsOf(n.spec)})
	return err
}

// Stop stops the slot's container gracefully (SIGTERM, then SIGKILL after
// dockerStopTimeout) and keeps it, stopped: its restart policy
// (unless-stopped) then keeps it down across dockerd restarts.
func (dockerRuntime) Stop(ctx context.Context, n *nodeRun, slot string) error {
	_, err := run(ctx, n, nodescript.DockerStop, nodescript.DockerStopInput{App: n.app, Slot: slot, StopTimeout: dockerStopTimeout})
	return err
}

func (dockerRuntime) Remove(ctx context.Context, n *nodeRun) error {
	_, err := run(ctx, n, nodescript.DockerRemove, nodescript.RemoveInput{App: n.app, PurgeData: n.purgeData})
	return err
}

// PruneImages removes the app's images whose release directory is gone
// (release pruning keeps keepReleases of them) and its dangling images.
// An image a container still uses stays (docker refuses without -f).
func (dockerRuntime) PruneImages(ctx context.Context, n *nodeRun) error {
	_, err := run(ctx, n, nodescript.DockerPruneImages, nodescript.AppInput{App: n.app})
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

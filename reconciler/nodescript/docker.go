package nodescript

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
)

// DockerBuildInput is the input of docker-build.
type DockerBuildInput struct {
	App     string
	Release string // the release's directory name (nodefiles.ReleaseID)
	Commit  string
	// Dockerfile is the spec's Dockerfile, relative to the release.
	Dockerfile string
	// BuildArgs are passed as --build-arg NAME=value, sorted by name.
	BuildArgs map[string]string
	// BuildHash is written to the release's built marker on success.
	BuildHash string
}

// DockerBuild builds the release's image (nodefiles.ImageRef), labelled
// with the app and commit; the release was checked out before. Every
// value, build arguments included, reaches it through the environment.
var DockerBuild = define("docker-build", func(in DockerBuildInput, c *call) {
	c.app(in.App)
	c.elem("RELEASE", "release", in.Release)
	c.set("COMMIT", in.Commit) // a label and a build argument, no path
	c.set("DOCKERFILE", in.Dockerfile)
	c.set("IMAGE", nf.ImageRef(in.App, in.Release))
	c.set("BAKERY_BUILD_HASH", in.BuildHash)
	keys := make([]string, 0, len(in.BuildArgs))
	for k := range in.BuildArgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		c.set("BA_"+strconv.Itoa(i), k+"="+in.BuildArgs[k])
	}
	c.setInt("NARGS", int64(len(keys)))
})

// DockerStartInput is the input of docker-start.
type DockerStartInput struct {
	App, Slot string
	Commit    string
	Release   string // the release whose image runs (nodefiles.ReleaseID)
	Revision  int64
	Port      int
	// Network is the spec's docker network: "host", or bridge (published
	// on the node's loopback).
	Network string
	// Command, if not empty, replaces the image's command (run by
	// /bin/sh -c).
	Command string
	// StopTimeout is how long docker waits after SIGTERM (seconds).
	StopTimeout int
	// Limits are the app's persistent directories (docker volumes) and
	// resource limits.
	Limits nf.Limits
}

// DockerStart (re)creates the slot's container from the release's image,
// its environment from the slot's env file (nodefiles.DockerEnvPath) only.
var DockerStart = define("docker-start", func(in DockerStartInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
	c.set("NAME", nf.ContainerName(in.App, in.Slot))
	c.set("NETWORK", in.Network)
	c.setInt("PORT", int64(in.Port))
	c.set("IMAGE", nf.ImageRef(in.App, in.Release))
	c.set("CMD", in.Command)
	c.setInt("STOP", int64(in.StopTimeout))
	c.set("ENVFILE", nf.DockerEnvPath(in.App, in.Slot))
	c.set("COMMIT", in.Commit) // labels only
	c.set("RELEASE", in.Release)
	c.setInt("REVISION", in.Revision)
	dockerLimits(c, in.App, in.Limits)
})

// DockerStopInput is the input of docker-stop.
type DockerStopInput struct {
	App, Slot   string
	StopTimeout int // seconds from SIGTERM to SIGKILL
}

// DockerStop stops the slot's container gracefully and keeps it, stopped
// (its restart policy then keeps it down across dockerd restarts).
var DockerStop = define("docker-stop", func(in DockerStopInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
	c.set("NAME", nf.ContainerName(in.App, in.Slot))
	c.setInt("STOP", int64(in.StopTimeout))
})

// DockerRemove removes the app's containers, images and its slots' env
// files, and with PurgeData its persistent volumes (kept otherwise).
var DockerRemove = define("docker-remove", func(in RemoveInput, c *call) {
	in.fill(c)
	c.set("REPO", nf.ImageRepo(in.App))
})

// DockerPruneImages removes the app's images whose release directory is
// gone and its dangling images; an image a container still uses stays.
var DockerPruneImages = define("docker-prune-images", func(in AppInput, c *call) {
	c.app(in.App)
	c.set("REPO", nf.ImageRepo(in.App))
})

// DockerProcsInput is the input of docker-scale-procs.
type DockerProcsInput struct {
	App, Slot string
	Commit    string
	Release   string // the release whose image runs
	Revision  int64
	// Network is the spec's docker network ("host", or bridge: nothing
	// published).
	Network string
	Procs   []DockerProc
	// Limits are the app's persistent directories and resource limits.
	Limits nf.Limits
}

// DockerProc is one process of a slot under docker.
type DockerProc struct {
	Name           string
	Command        string // run by /bin/sh -c (spec text, never a secret)
	Replicas       int
	StopTimeoutSec int
}

// DockerScaleProcs runs instances 1..Replicas of each process of the slot
// as containers of the release's image and stops the slot's others.
var DockerScaleProcs = define("docker-scale-procs", func(in DockerProcsInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
	var list []string
	for i, p := range in.Procs {
		if r := api.ValidateProcessName(p.Name); r != "" {
			c.fail("process name %s", r)
			return
		}
		if r := nf.ValidateReplicas(p.Replicas); r != "" {
			c.fail("process %s: %s", p.Name, r)
		}
		if r := nf.ValidateStopTimeout(p.StopTimeoutSec); r != "" {
			c.fail("process %s: %s", p.Name, r)
		}
		if p.Command == "" {
			c.fail("process %s: empty command", p.Name)
		}
		list = append(list, fmt.Sprintf("%s:%d:%d", p.Name, p.Replicas, p.StopTimeoutSec))
		c.set(fmt.Sprintf("CMD_%d", i), p.Command)
	}
	c.set("PROCS", strings.Join(list, " "))
	dockerLimits(c, in.App, in.Limits)
	c.set("IMAGE", nf.ImageRef(in.App, in.Release))
	c.set("ENVFILE", nf.DockerEnvPath(in.App, in.Slot))
	c.set("NETWORK", in.Network)
	c.set("COMMIT", in.Commit) // labels only
	c.set("RELEASE", in.Release)
	c.setInt("REVISION", in.Revision)
})

// DockerProcsStop stops every process container of the slot (SIGTERM and
// each one's stop timeout), keeping them, stopped, with their logs.
var DockerProcsStop = define("docker-procs-stop", func(in SlotInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
})

// dockerLimits sets DOCKER_LIMITS (the docker run options of l's resource
// limits) and PERSIST ("VOLUME:PATH ..." of its persistent directories)
// for a script that runs containers of app.
func dockerLimits(c *call, app string, l nf.Limits) {
	if r := l.Validate(); r != "" {
		c.fail("%s", r)
		return
	}
	c.set("DOCKER_LIMITS", strings.Join(l.DockerArgs(), " "))
	var vols []string
	for _, p := range l.Persistent {
		vols = append(vols, nf.DockerVolume(app, p)+":"+p)
	}
	c.set("PERSIST", strings.Join(vols, " "))
}

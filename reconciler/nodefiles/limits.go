package nodefiles

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"

	"bakery.dev/bakery/api"
)

// Limits are the persistent directories and resource limits of an app's
// units (spec.persistent, spec.resources), passed to the node helper's
// unit-install, proc-install and sched-install as trailing options
// (--persist PATH, --memory BYTES, --cpu MILLICORES, --tasks N) and
// rendered by it into every unit of the app.
type Limits struct {
	// Persistent are spec.persistent's paths (relative to the release).
	Persistent []string
	// MemoryBytes, CPUMilli and Tasks: 0 means no limit.
	MemoryBytes int64
	CPUMilli    int64
	Tasks       int
}

// LimitsOf reads a deployment spec's persistent directories and limits.
func LimitsOf(s *api.DeploymentSpec) Limits {
	l := Limits{MemoryBytes: s.Resources.MemoryBytes(), CPUMilli: s.Resources.CPUMilli(), Tasks: s.Resources.TasksLimit()}
	for _, p := range s.Persistent {
		l.Persistent = append(l.Persistent, p.Path)
	}
	return l
}

// Validate applies the helper's check_persist and check_limit rules.
func (l Limits) Validate() string {
	if len(l.Persistent) > api.MaxPersistent {
		return fmt.Sprintf("%d persistent directories: at most %d", len(l.Persistent), api.MaxPersistent)
	}
	for _, p := range l.Persistent {
		if r := api.ValidatePersistentPath(p); r != "" {
			return r
		}
	}
	if l.MemoryBytes != 0 && (l.MemoryBytes < api.MinMemory || l.MemoryBytes > api.MaxMemory) {
		return fmt.Sprintf("memory %d: want %d-%d bytes", l.MemoryBytes, int64(api.MinMemory), int64(api.MaxMemory))
	}
	if l.CPUMilli != 0 && (l.CPUMilli < 10 || l.CPUMilli > api.MaxCPUMilli || l.CPUMilli%10 != 0) {
		return fmt.Sprintf("cpu %dm: want a multiple of 10m, 10-%d", l.CPUMilli, api.MaxCPUMilli)
	}
	if l.Tasks < 0 || l.Tasks > api.MaxTasks {
		return fmt.Sprintf("tasks %d: want 1-%d", l.Tasks, api.MaxTasks)
	}
	return ""
}

// Args are the helper options for l, in the helper's order.
func (l Limits) Args() []string {
	var a []string
	for _, p := range l.Persistent {
		a = append(a, "--persist", p)
	}
	if l.MemoryBytes != 0 {
		a = append(a, "--memory", strconv.FormatInt(l.MemoryBytes, 10))
	}
	if l.CPUMilli != 0 {
		a = append(a, "--cpu", strconv.FormatInt(l.CPUMilli, 10))
	}
	if l.Tasks != 0 {
		a = append(a, "--tasks", strconv.Itoa(l.Tasks))
	}
	return a
}

// PersistentRoot holds an app's persistent directories on the node
// (root-owned 0755, so the app cannot swap one for a symlink); each is
// PersistentDir, owned by AppUser, 0700.
func PersistentRoot(app string) string { return path.Join(AppsDataRoot, app, "persistent") }

// PersistentDir is the node directory of persistent path p of app.
func PersistentDir(app, p string) string {
	return path.Join(PersistentRoot(app), api.PersistentName(p))
}

// DockerVolume is the docker volume of persistent path p of app (labelled
// bakery.app=APP; it outlives the app's containers).
func DockerVolume(app, p string) string {
	h := sha256.Sum256([]byte(p))
	return "bakery-" + app + "-data-" + hex.EncodeToString(h[:])[:12]
}

// unitLines are the unit properties of l for a unit running release rel.
func (l Limits) unitLines(app, rel string) string {
	var b strings.Builder
	for _, p := range l.Persistent {
		fmt.Fprintf(&b, "BindPaths=%s:%s\n", PersistentDir(app, p), path.Join(ReleaseDir(app, rel), p))
	}
	l.resourceLines(&b)
	return b.String()
}

func (l Limits) resourceLines(b *strings.Builder) {
	if l.MemoryBytes != 0 {
		fmt.Fprintf(b, "MemoryMax=%d\n", l.MemoryBytes)
	}
	if l.CPUMilli != 0 {
		fmt.Fprintf(b, "CPUQuota=%d%%\n", l.CPUMilli/10)
	}
	if l.Tasks != 0 {
		fmt.Fprintf(b, "TasksMax=%d\n", l.Tasks)
	}
}

// DockerArgs are the docker run options of l's resource limits.
func (l Limits) DockerArgs() []string {
	var a []string
	if l.MemoryBytes != 0 {
		a = append(a, "--memory", strconv.FormatInt(l.MemoryBytes, 10))
	}
	if l.CPUMilli != 0 {
		a = append(a, "--cpus", fmt.Sprintf("%d.%03d", l.CPUMilli/1000, l.CPUMilli%1000))
	}
	if l.Tasks != 0 {
		a = append(a, "--pids-limit", strconv.Itoa(l.Tasks))
	}
	return a
}

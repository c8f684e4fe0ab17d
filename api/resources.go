package api

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Persistent is a directory that survives releases, rollbacks and
// restarts (spec.persistent). Under runtime systemd the app sees it at
// Path inside every release (a bind mount of a directory kept on the node
// under /var/lib/bakery-apps/APP/persistent, owned by the app's user);
// under runtime docker it is a bind mount at Path below the image's
// working directory. Deleting the Deployment keeps it unless `bakery
// delete --purge-data`.
type Persistent struct {
	// Path is relative to the release directory (the image's working
	// directory under docker): '/'-separated parts of letters, digits,
	// '.', '_' and '-', none starting with '.', at most 128 characters.
	Path string `json:"path"`
	// Size is advisory (like 1Gi or 500M): status reports the directory's
	// usage against it; nothing stops a write beyond it.
	Size string `json:"size,omitempty"`
}

// Resources limits what each of the app's processes (web, processes,
// schedules) may use on a node. Every field is optional.
type Resources struct {
	// Memory is the most memory a unit or container may use (256Mi, 1G,
	// or bytes; at least 8Mi): systemd MemoryMax, docker --memory. A unit
	// over it is OOM-killed (status says OOMKilled).
	Memory string `json:"memory,omitempty"`
	// CPU is the share of CPU time in cores (0.5 or 500m; a multiple of
	// 10m, at most 1024): systemd CPUQuota, docker --cpus.
	CPU string `json:"cpu,omitempty"`
	// Tasks bounds the processes and threads (1-1000000): systemd
	// TasksMax, docker --pids-limit.
	Tasks int `json:"tasks,omitempty"`
}

// MaxPersistent bounds spec.persistent's entries; MaxPersistentPath the
// length of a path.
const (
	MaxPersistent     = 16
	MaxPersistentPath = 128
	MinMemory         = 8 << 20
	MaxMemory         = 1 << 40
	MaxCPUMilli       = 1024000
	MaxTasks          = 1000000
)

var persistPartRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*$`)

// ValidatePersistentPath checks spec.persistent[].path (the node helper's
// check_persist): relative, clean, no "..", no part starting with '.'.
func ValidatePersistentPath(p string) string {
	if p == "" || len(p) > MaxPersistentPath || path.Clean(p) != p || strings.HasPrefix(p, "/") {
		return fmt.Sprintf("%q is not a clean relative path of at most %d characters", p, MaxPersistentPath)
	}
	for _, part := range strings.Split(p, "/") {
		if !persistPartRE.MatchString(part) {
			return fmt.Sprintf("%q: part %q must be letters, digits, '.', '_' or '-', not starting with '.'", p, part)
		}
	}
	return ""
}

// PersistentName is the directory that holds persistent path p on the
// node: p with '/' written as '+' (a character no part may hold).
func PersistentName(p string) string { return strings.ReplaceAll(p, "/", "+") }

var quantityRE = regexp.MustCompile(`^([0-9]{1,15})(Ki|Mi|Gi|Ti|K|M|G|T)?$`)

var quantityMult = map[string]int64{"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}

// ParseBytes reads a quantity of bytes: digits with an optional suffix K,
// M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024).
func ParseBytes(s string) (int64, error) {
	m := quantityRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a quantity (like 256Mi, 1G or bytes)", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	mult := quantityMult[m[2]]
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

var cpuRE = regexp.MustCompile(`^(?:([0-9]{1,4})(?:\.([0-9]{1,3}))?|([0-9]{1,7})m)$`)

// ParseCPU reads a CPU quantity in cores (0.5, 2) or millicores (500m)
// and returns millicores.
func ParseCPU(s string) (int64, error) {
	m := cpuRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a CPU quantity (like 0.5, 2 or 500m)", s)
	}
	if m[3] != "" {
		n, _ := strconv.ParseInt(m[3], 10, 64)
		return n, nil
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	frac := (m[2] + "000")[:3]
	f, _ := strconv.ParseInt(frac, 10, 64)
	return n*1000 + f, nil
}

// MemoryBytes, CPUMilli and TasksLimit are r's limits as numbers (0: no
// limit); r must be valid.
func (r *Resources) MemoryBytes() int64 {
	if r == nil || r.Memory == "" {
		return 0
	}
	n, _ := ParseBytes(r.Memory)
	return n
}

// CPUMilli is r.CPU in millicores (0: none).
func (r *Resources) CPUMilli() int64 {
	if r == nil || r.CPU == "" {
		return 0
	}
	n, _ := ParseCPU(r.CPU)
	return n
}

// TasksLimit is r.Tasks (0: none).
func (r *Resources) TasksLimit() int {
	if r == nil {
		return 0
	}
	return r.Tasks
}

// validatePersistent checks spec.persistent.
func validatePersistent(es *FieldErrors, ps []Persistent) {
	if len(ps) > MaxPersistent {
		es.add("spec.persistent", "must have at most 16 directories")
	}
	var ok []string
	for i, p := range ps {
		fp := fmt.Sprintf("spec.persistent[%d]", i)
		if r := ValidatePersistentPath(p.Path); r != "" {
			es.add(fp+".path", "must be a relative path: '/'-separated parts of letters, digits, '.', '_', '-', not starting with '.', at most 128 characters (%s)", r)
		} else {
			for _, o := range ok {
				if o == p.Path || strings.HasPrefix(p.Path, o+"/") || strings.HasPrefix(o, p.Path+"/") {
					es.add(fp+".path", "%q overlaps %q (directories must not nest or repeat)", p.Path, o)
				}
			}
			ok = append(ok, p.Path)
		}
		if p.Size != "" {
			if _, err := ParseBytes(p.Size); err != nil {
				es.add(fp+".size", "must be a quantity like 1Gi, 500M or bytes (%v)", err)
			}
		}
	}
}

// validateResources checks spec.resources.
func validateResources(es *FieldErrors, r *Resources) {
	if r == nil {
		return
	}
	if r.Memory != "" {
		if n, err := ParseBytes(r.Memory); err != nil {
			es.add("spec.resources.memory", "must be a quantity like 256Mi, 1G or bytes (%v)", err)
		} else if n < MinMemory || n > MaxMemory {
			es.add("spec.resources.memory", "must be 8Mi-1Ti")
		}
	}
	if r.CPU != "" {
		if n, err := ParseCPU(r.CPU); err != nil {
			es.add("spec.resources.cpu", "must be cores like 0.5 or millicores like 500m (%v)", err)
		} else if n < 10 || n > MaxCPUMilli || n%10 != 0 {
			es.add("spec.resources.cpu", "must be a multiple of 10m (0.01), 10m-1024")
		}
	}
	if r.Tasks < 0 || r.Tasks > MaxTasks {
		es.add("spec.resources.tasks", "must be 1-1000000")
	}
}

package api

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"
)

// KindManifestSource is the kind of a git repository of manifests that
// Bakery keeps applied.
const KindManifestSource = "ManifestSource"

// AnnotationOwner marks an object written by a manifest sync: its value
// names the owner ("ManifestSource/<name>" or "Directory:<path>"). Only
// the owner prunes the object, and only when it is gone from the owner's
// manifests.
const AnnotationOwner = "bakery.dev/owner"

// Defaults for ManifestSources.
const (
	DefaultManifestBranch   = "main"
	DefaultManifestPath     = "."
	DefaultManifestInterval = 5 * time.Minute
)

// ManifestSource is a directory of a git repository's branch holding
// Bakery manifests. On a push webhook and every interval Bakery fetches
// it, decodes every manifest strictly and applies them as one unit;
// objects it created that are gone from the repository are pruned.
type ManifestSource struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta           `json:"metadata"`
	Spec     ManifestSourceSpec   `json:"spec"`
	Status   ManifestSourceStatus `json:"status,omitempty"`
}

// ManifestSourceSpec is the desired state of a ManifestSource.
type ManifestSourceSpec struct {
	// Repo is a git URL or a path on the control plane's host.
	Repo string `json:"repo"`
	// Branch is followed (default main).
	Branch string `json:"branch,omitempty"`
	// Path is the directory inside the repository whose *.yaml, *.yml and
	// *.json files (recursively, hidden ones skipped) form the bundle
	// (default ".", the whole repository).
	Path string `json:"path,omitempty"`
	// Interval is how often the branch is fetched without a webhook
	// (default 5m).
	Interval *Duration `json:"interval,omitempty"`
	// Prune deletes objects this source created that are no longer in its
	// manifests (default true).
	Prune *bool `json:"prune,omitempty"`
	// DryRun computes what a sync would do and reports it in status
	// without changing anything.
	DryRun bool `json:"dryRun,omitempty"`
	// Suspend stops syncing.
	Suspend bool `json:"suspend,omitempty"`
	// AllowedKinds are the kinds of object the source's manifests may hold
	// (default Deployment and Secret). A manifest of any other kind fails
	// the sync, and nothing is applied: whoever can push to the repository
	// writes only these kinds. Allowing Node lets the repository add nodes
	// (and, on a server started with --allow-local-nodes, local ones);
	// allowing ManifestSource lets it add sources with other allowed kinds.
	AllowedKinds []string `json:"allowedKinds,omitempty"`
}

// DefaultManifestAllowedKinds are the kinds a ManifestSource may write
// when its spec.allowedKinds is empty.
func DefaultManifestAllowedKinds() []string { return []string{KindDeployment, KindSecret} }

// ManifestSourceStatus is the observed state of a ManifestSource.
type ManifestSourceStatus struct {
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
	// LastSyncedCommit is the commit whose manifests were last applied
	// (or, on a dry run, evaluated) successfully.
	LastSyncedCommit string `json:"lastSyncedCommit,omitempty"`
	// LastAttemptedCommit is the commit of the last sync attempt.
	LastAttemptedCommit string `json:"lastAttemptedCommit,omitempty"`
	LastSyncTime        *Time  `json:"lastSyncTime,omitempty"`
	// LastError is why the last attempt failed; empty after a success.
	LastError string `json:"lastError,omitempty"`
	// DryRun says the lists below are what a sync would do.
	DryRun bool `json:"dryRun,omitempty"`
	// Created, Changed and Pruned name ("Kind/name") what the last sync
	// that changed anything did; Unchanged counts the rest.
	Created   []string `json:"created,omitempty"`
	Changed   []string `json:"changed,omitempty"`
	Pruned    []string `json:"pruned,omitempty"`
	Unchanged int      `json:"unchanged,omitempty"`
	// Inventory names every object the source's manifests hold.
	Inventory []string `json:"inventory,omitempty"`
	// SyncRequested is the latest sync asked for (bakery source sync);
	// SyncHandled the last one carried out. They differ while one is
	// pending.
	SyncRequested string `json:"syncRequested,omitempty"`
	SyncHandled   string `json:"syncHandled,omitempty"`
}

// GetTypeMeta implements Object.
func (m *ManifestSource) GetTypeMeta() *TypeMeta { return &m.TypeMeta }

// GetObjectMeta implements Object.
func (m *ManifestSource) GetObjectMeta() *ObjectMeta { return &m.Metadata }

// DeepCopyObject implements Object.
func (m *ManifestSource) DeepCopyObject() Object { return deepCopy(m) }

// SpecJSON implements Object.
func (m *ManifestSource) SpecJSON() json.RawMessage { return mustJSON(m.Spec) }

// StatusJSON implements Object.
func (m *ManifestSource) StatusJSON() json.RawMessage { return mustJSON(m.Status) }

// SetSpecJSON implements Object.
func (m *ManifestSource) SetSpecJSON(b json.RawMessage) error {
	var s ManifestSourceSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	m.Spec = s
	return nil
}

// SetStatusJSON implements Object.
func (m *ManifestSource) SetStatusJSON(b json.RawMessage) error {
	var s ManifestSourceStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	m.Status = s
	return nil
}

// Default implements Object.
func (m *ManifestSource) Default() {
	s := &m.Spec
	if s.Branch == "" {
		s.Branch = DefaultManifestBranch
	}
	if s.Path == "" {
		s.Path = DefaultManifestPath
	}
	if s.Interval == nil {
		s.Interval = &Duration{DefaultManifestInterval}
	}
	if s.Prune == nil {
		t := true
		s.Prune = &t
	}
	if len(s.AllowedKinds) == 0 {
		s.AllowedKinds = DefaultManifestAllowedKinds()
	}
}

// PruneEnabled reports whether the source prunes (the default).
func (s *ManifestSourceSpec) PruneEnabled() bool { return s.Prune == nil || *s.Prune }

// Validate implements Object. It expects a defaulted object.
func (m *ManifestSource) Validate() FieldErrors {
	var es FieldErrors
	validateTypeMeta(&es, &m.TypeMeta, KindManifestSource)
	es = append(es, ValidateMeta(&m.Metadata)...)
	s := &m.Spec
	if s.Repo == "" {
		es.add("spec.repo", "is required")
	} else if strings.ContainsAny(s.Repo, "\x00\n\r") || strings.HasPrefix(s.Repo, "-") {
		es.add("spec.repo", "%q is not a valid repository URL or path", s.Repo)
	}
	if !gitRefRE.MatchString(s.Branch) || strings.Contains(s.Branch, "..") {
		es.add("spec.branch", "%q is not a valid branch name", s.Branch)
	}
	if r := ValidateRepoPath(s.Path); r != "" {
		es.add("spec.path", "%s", r)
	}
	if s.Interval != nil && s.Interval.Duration < time.Second {
		es.add("spec.interval", "must be at least 1s")
	}
	seen := map[string]bool{}
	for i, k := range s.AllowedKinds {
		field := fmt.Sprintf("spec.allowedKinds[%d]", i)
		switch {
		case registry[k] == nil:
			es.add(field, "%q is not a kind (one of %s)", k, strings.Join(Kinds(), ", "))
		case seen[k]:
			es.add(field, "%s is listed twice", k)
		}
		seen[k] = true
	}
	return es
}

// ValidateRepoPath checks a directory path inside a repository: relative,
// clean, without "..", and returns the reason when it is not.
func ValidateRepoPath(p string) string {
	switch {
	case p == "":
		return "is required"
	case strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q must be relative to the repository root", p)
	case strings.ContainsAny(p, "\x00\n\r\\"):
		return fmt.Sprintf("%q contains a character not allowed in a path", p)
	case strings.HasPrefix(p, "-"):
		return fmt.Sprintf("%q must not start with '-'", p)
	case path.Clean(p) != p && path.Clean(p) != strings.TrimSuffix(p, "/"):
		return fmt.Sprintf("%q is not a clean path (write %q)", p, path.Clean(p))
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return fmt.Sprintf("%q must not contain '..'", p)
		}
	}
	return ""
}

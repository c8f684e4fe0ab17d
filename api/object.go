package api

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Kinds Bakery knows.
const (
	KindNode       = "Node"
	KindDeployment = "Deployment"
	// KindSecret is declared in secret.go.
)

// Object is what every Bakery resource implements.
type Object interface {
	// GetTypeMeta and GetObjectMeta return pointers into the object, so the
	// caller may change them.
	GetTypeMeta() *TypeMeta
	GetObjectMeta() *ObjectMeta
	// DeepCopyObject returns an independent copy.
	DeepCopyObject() Object
	// SpecJSON and StatusJSON return the canonical JSON of spec and status.
	SpecJSON() json.RawMessage
	StatusJSON() json.RawMessage
	// SetSpecJSON and SetStatusJSON replace spec or status by decoding JSON
	// (lenient: the JSON comes from Bakery's own storage).
	SetSpecJSON(json.RawMessage) error
	SetStatusJSON(json.RawMessage) error
	// Default fills in defaults for omitted spec fields.
	Default()
	// Validate returns every problem of the object at once.
	Validate() FieldErrors
}

// Kinds returns the kinds Bakery knows, sorted.
func Kinds() []string {
	ks := make([]string, 0, len(registry))
	for k := range registry {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

var registry = map[string]func() Object{
	KindNode:       func() Object { return &Node{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindNode}} },
	KindDeployment: func() Object { return &Deployment{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindDeployment}} },
	KindManifestSource: func() Object {
		return &ManifestSource{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindManifestSource}}
	},
	KindSecret: func() Object { return &Secret{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindSecret}} },
}

// aliases maps the names users type (kubectl style) to kinds.
var aliases = map[string]string{
	"node": KindNode, "nodes": KindNode, "no": KindNode,
	"deployment": KindDeployment, "deployments": KindDeployment, "deploy": KindDeployment,
	"manifestsource": KindManifestSource, "manifestsources": KindManifestSource, "source": KindManifestSource,
	"sources": KindManifestSource, "ms": KindManifestSource,
	"secret": KindSecret, "secrets": KindSecret,
}

// New returns an empty object of kind with its TypeMeta set.
func New(kind string) (Object, error) {
	f, ok := registry[kind]
	if !ok {
		return nil, fmt.Errorf("unknown kind %q (known: %v)", kind, Kinds())
	}
	return f(), nil
}

// KindFor resolves a kind, a lower-case name or plural ("deployments",
// "deploy", "node") to a kind.
func KindFor(name string) (string, error) {
	if _, ok := registry[name]; ok {
		return name, nil
	}
	if k, ok := aliases[name]; ok {
		return k, nil
	}
	return "", fmt.Errorf("unknown resource type %q (known: nodes, deployments, manifestsources, secrets)", name)
}

// Resource returns the lower-case plural used in URLs for a kind
// ("deployments").
func Resource(kind string) string {
	switch kind {
	case KindNode:
		return "nodes"
	case KindDeployment:
		return "deployments"
	case KindManifestSource:
		return "manifestsources"
	case KindSecret:
		return "secrets"
	}
	return ""
}

// Ref returns "Kind/name", the identity of an object used as a work-queue key.
func Ref(o Object) string { return o.GetTypeMeta().Kind + "/" + o.GetObjectMeta().Name }

// Assemble builds an object of kind from stored parts.
func Assemble(kind string, meta ObjectMeta, spec, status json.RawMessage) (Object, error) {
	o, err := New(kind)
	if err != nil {
		return nil, err
	}
	*o.GetObjectMeta() = meta
	if len(spec) > 0 {
		if err := o.SetSpecJSON(spec); err != nil {
			return nil, fmt.Errorf("%s/%s: spec: %w", kind, meta.Name, err)
		}
	}
	if len(status) > 0 && string(status) != "null" {
		if err := o.SetStatusJSON(status); err != nil {
			return nil, fmt.Errorf("%s/%s: status: %w", kind, meta.Name, err)
		}
	}
	return o, nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain data types are marshalled here; failure is a bug.
		panic(fmt.Sprintf("api: marshal: %v", err))
	}
	return b
}

func deepCopy[T any](in *T) *T {
	var out T
	b := mustJSON(in)
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("api: deep copy: %v", err))
	}
	return &out
}

// Equal reports whether a and b have equal canonical JSON.
func Equal(a, b json.RawMessage) bool { return string(a) == string(b) }

// Package store defines how Bakery keeps its objects: the Store interface,
// its errors and events, and the generic operations built on it (Apply).
//
// Two implementations live in subpackages: filestore (a directory of YAML
// files, the embedded default) and pgstore (PostgreSQL). Both must pass the
// conformance suite in storetest. The store does not default or validate
// specs (package api does); it only refuses names that are not DNS-1123
// labels, so that a name can never become a path or escape a query.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"bakery.dev/bakery/api"
)

// Errors returned by every Store, wrapped with context: test with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict means the write carried a stale resourceVersion.
	ErrConflict = errors.New("conflict: the object has been modified; read it again and retry")
	// ErrInvalid means the request itself is malformed (bad name, unknown kind).
	ErrInvalid = errors.New("invalid")
	// ErrCorrupt means stored data could not be read back (for example a
	// truncated file in the file store). It is reported, never dropped.
	ErrCorrupt = errors.New("corrupt stored object")
)

// ListOptions narrows a List.
type ListOptions struct {
	Selector api.Selector
}

// Reader reads objects. Objects returned are copies the caller owns.
type Reader interface {
	// Get returns the object kind/name or ErrNotFound.
	Get(ctx context.Context, kind, name string) (api.Object, error)
	// List returns the objects of kind matching opts, sorted by name.
	List(ctx context.Context, kind string, opts ListOptions) ([]api.Object, error)
}

// Writer changes objects. Each method returns the object as stored.
type Writer interface {
	// Create stores a new object: it sets uid, generation 1, a
	// resourceVersion and creationTimestamp (ignoring any given), keeps the
	// given status, and fails with ErrAlreadyExists if the name is taken.
	Create(ctx context.Context, obj api.Object) (api.Object, error)
	// Update replaces spec, labels and annotations. A non-empty
	// resourceVersion must match the stored one (else ErrConflict). If spec,
	// labels and annotations are unchanged nothing is written and the stored
	// object is returned. A changed spec increments generation. Status is
	// kept.
	Update(ctx context.Context, obj api.Object) (api.Object, error)
	// UpdateStatus replaces status only; generation never changes. A
	// non-empty resourceVersion must match (a stale one is ErrConflict
	// even when nothing would change). An unchanged status writes nothing.
	UpdateStatus(ctx context.Context, obj api.Object) (api.Object, error)
	// Delete removes kind/name. A non-empty resourceVersion must match.
	Delete(ctx context.Context, kind, name, resourceVersion string) error
}

// Tx is the view of a store inside a transaction.
type Tx interface {
	Reader
	Writer
}

// EventType says what happened to an object.
type EventType string

// Event types.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one committed change. Object is the object after the change
// (for Deleted, the last stored state).
type Event struct {
	Type   EventType
	Object api.Object
}

// WatchOptions narrows a Watch.
type WatchOptions struct {
	// Kind limits events to one kind; empty means all kinds.
	Kind string
}

// Token is an API token. Only a hash of its secret is stored.
type Token struct {
	Name      string    `json:"name"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"createdAt"`
}

// Tokens keeps API tokens.
type Tokens interface {
	// CreateToken stores t; ErrAlreadyExists if the name is taken.
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash returns the token with hash h or ErrNotFound.
	TokenByHash(ctx context.Context, h string) (Token, error)
	// ListTokens returns all tokens sorted by name.
	ListTokens(ctx context.Context) ([]Token, error)
	// DeleteToken removes a token by name; ErrNotFound if there is none.
	DeleteToken(ctx context.Context, name string) error
}

// Store keeps Bakery's objects.
type Store interface {
	Reader
	Writer
	Tokens
	// Txn runs fn in a transaction: every write fn makes is committed
	// together, or none is (when fn or the commit fails, or fn panics —
	// the panic then propagates). Events are delivered after the commit.
	// Concurrent transactions are serialised as far as conflicts require:
	// of two writers updating one object with the same resourceVersion
	// exactly one wins. fn must use only tx — calling the Store itself
	// inside fn can deadlock a store that serialises transactions — and
	// tx must not be used after Txn returns.
	Txn(ctx context.Context, fn func(tx Tx) error) error
	// Watch delivers changes committed after the call, in commit order,
	// until ctx ends. Events for one object are never reordered. When a
	// watcher cannot keep up, its channel is closed early: the caller
	// re-lists and watches again (level-based consumers lose nothing).
	// Start the Watch before the List it complements, so that nothing
	// changed in between is missed.
	Watch(ctx context.Context, opts WatchOptions) (<-chan Event, error)
	// Ping reports whether the store is usable (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// CheckName returns an ErrInvalid error unless kind is known and name is a
// DNS-1123 label. Implementations call it before touching storage.
func CheckName(kind, name string) error {
	if _, err := api.New(kind); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if r := api.ValidateName(name); r != "" {
		return fmt.Errorf("%w: %s name: %s", ErrInvalid, kind, r)
	}
	return nil
}

// Changed reports which user-owned parts of desired differ from current:
// spec (which bumps generation) and metadata labels/annotations.
func Changed(current, desired api.Object) (spec, meta bool) {
	spec = !api.Equal(current.SpecJSON(), desired.SpecJSON())
	cm, dm := current.GetObjectMeta(), desired.GetObjectMeta()
	meta = !mapsEqual(cm.Labels, dm.Labels) || !mapsEqual(cm.Annotations, dm.Annotations)
	return spec, meta
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

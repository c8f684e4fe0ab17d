package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// KindSecret names Secrets.
const KindSecret = "Secret"

// Secret holds values an application needs but that must not be written
// in plain text anywhere: database passwords, API tokens. Deployments
// reference them (spec.run.envFrom, spec.run.env[].valueFrom); the control
// loop opens them and writes them into the app's 0600 environment file on
// each node, and nowhere else.
//
// Values are written in spec.data (plain text, on writes only). The API
// server seals every value with its encryption key (package
// api/store/sealed) into spec.sealed and stores only that; reads show the
// keys (status.keys), never a value.
type Secret struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta   `json:"metadata"`
	Spec     SecretSpec   `json:"spec"`
	Status   SecretStatus `json:"status,omitempty"`
}

// SecretSpec is a Secret's values.
type SecretSpec struct {
	// Data holds values in plain text to be sealed, by key. It is accepted
	// on writes only: the server seals each value into Sealed and neither
	// stores nor returns Data. Keys are environment variable names.
	Data map[string]string `json:"data,omitempty"`
	// Sealed holds the values sealed with the server's encryption key
	// (base64), by key. It is written by the server; `bakery export
	// --secrets` carries it so that `bakery apply` restores a secret into a
	// server holding the same key. A key may not be in both Data and Sealed.
	Sealed map[string]string `json:"sealed,omitempty"`
}

// SecretStatus is what reads show of a Secret.
type SecretStatus struct {
	// Keys lists the secret's keys, sorted (filled in by the API server on
	// reads: values are never shown).
	Keys []string `json:"keys,omitempty"`
}

// Limits of a Secret.
const (
	// MaxSecretValue is the largest value of one key, in bytes.
	MaxSecretValue = 64 << 10
	// MaxSecretKeys is how many keys one Secret holds at most.
	MaxSecretKeys = 256
)

// SecretAD is the associated data a secret value is sealed with: it binds
// the sealed value to its secret and key, so that a value copied to
// another secret or key does not open there.
func SecretAD(secret, key string) []byte {
	return []byte("bakery secret " + secret + "/" + key)
}

// Keys returns the keys of Data and Sealed, sorted.
func (s *SecretSpec) Keys() []string {
	ks := make([]string, 0, len(s.Data)+len(s.Sealed))
	for k := range s.Data {
		ks = append(ks, k)
	}
	for k := range s.Sealed {
		if _, dup := s.Data[k]; !dup {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

// GetTypeMeta implements Object.
func (s *Secret) GetTypeMeta() *TypeMeta { return &s.TypeMeta }

// GetObjectMeta implements Object.
func (s *Secret) GetObjectMeta() *ObjectMeta { return &s.Metadata }

// DeepCopyObject implements Object.
func (s *Secret) DeepCopyObject() Object { return deepCopy(s) }

// SpecJSON implements Object.
func (s *Secret) SpecJSON() json.RawMessage { return mustJSON(s.Spec) }

// StatusJSON implements Object.
func (s *Secret) StatusJSON() json.RawMessage { return mustJSON(s.Status) }

// SetSpecJSON implements Object.
func (s *Secret) SetSpecJSON(b json.RawMessage) error {
	var sp SecretSpec
	if err := json.Unmarshal(b, &sp); err != nil {
		return err
	}
	s.Spec = sp
	return nil
}

// SetStatusJSON implements Object.
func (s *Secret) SetStatusJSON(b json.RawMessage) error {
	var st SecretStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	s.Status = st
	return nil
}

// Default implements Object. A Secret has no defaults.
func (s *Secret) Default() {}

// Validate implements Object. Sealed values are checked for their form
// (base64) only: whether they open is for the server, which holds the key.
func (s *Secret) Validate() FieldErrors {
	var es FieldErrors
	validateTypeMeta(&es, &s.TypeMeta, KindSecret)
	es = append(es, ValidateMeta(&s.Metadata)...)
	if n := len(s.Spec.Keys()); n > MaxSecretKeys {
		es.add("spec", "holds %d keys, at most %d are allowed", n, MaxSecretKeys)
	}
	for _, k := range sortedKeys(s.Spec.Data) {
		p := "spec.data." + k
		if r := validSecretKey(k); r != "" {
			es.add(p, "%s", r)
		}
		if _, dup := s.Spec.Sealed[k]; dup {
			es.add(p, "is also in spec.sealed: give each key once")
		}
		v := s.Spec.Data[k]
		switch {
		case len(v) > MaxSecretValue:
			es.add(p, "is %d bytes, at most %d are allowed", len(v), MaxSecretValue)
		case strings.ContainsRune(v, 0):
			es.add(p, "must not contain NUL")
		}
	}
	for _, k := range sortedKeys(s.Spec.Sealed) {
		p := "spec.sealed." + k
		if r := validSecretKey(k); r != "" {
			es.add(p, "%s", r)
		}
		if _, err := base64.StdEncoding.DecodeString(s.Spec.Sealed[k]); err != nil {
			es.add(p, "must be a sealed value (base64) as `bakery export --secrets` writes it")
		}
	}
	return es
}

func validSecretKey(k string) string {
	switch {
	case !envName.MatchString(k):
		return fmt.Sprintf("%q is not a valid key: keys are environment variable names (letters, digits and '_', not starting with a digit)", k)
	case k == "PORT":
		return "PORT is set by Bakery to the slot's port"
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

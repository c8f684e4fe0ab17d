package deployment

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
)

// ReasonSecretUnavailable is the reason of a Deployment whose secrets
// cannot be read: a missing Secret or key, or no encryption key.
const ReasonSecretUnavailable = "SecretUnavailable"

// resolvedEnv is a deployment's environment with its secrets opened.
type resolvedEnv struct {
	// env is every variable: spec.run.envFrom secrets, then spec.run.env
	// (literal values and secretKeyRefs), later ones winning.
	env map[string]string
	// secret lists the values that came from secrets (masked in logs).
	secret []string
	// hash identifies the secret values (an HMAC, keyed with the secrets'
	// uids, of the variables that came from secrets; "" when none did), so
	// that a changed secret makes a new revision. It does not reveal a
	// random value; someone holding the store (uids included) could
	// still test guesses of a low-entropy one.
	hash string
}

// resolveEnv opens the Secrets d references and builds its environment.
// Values are opened only here, in memory, on the way to the node's 0600
// env file.
func resolveEnv(ctx context.Context, st store.Reader, kr *sealed.Keyring, s *api.DeploymentSpec) (resolvedEnv, error) {
	out := resolvedEnv{env: map[string]string{}}
	names := s.SecretNames()
	if len(names) == 0 {
		for _, e := range s.Run.Env {
			out.env[e.Name] = e.Value
		}
		return out, nil
	}
	if kr == nil || kr.Len() == 0 {
		return out, fmt.Errorf("the deployment uses secrets %v, but this server has no encryption key: start it with %s", names, sealed.EncryptionKeyHint)
	}
	opened := map[string]map[string]string{}
	uids := map[string]string{}
	for _, n := range names {
		vals, uid, err := openSecret(ctx, st, kr, n)
		if err != nil {
			return out, err
		}
		opened[n] = vals
		uids[n] = uid
	}
	fromSecret := map[string]bool{}
	for _, ef := range s.Run.EnvFrom {
		for k, v := range opened[ef.SecretRef] {
			out.env[k] = v
			fromSecret[k] = true
		}
	}
	for _, e := range s.Run.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			out.env[e.Name] = e.Value
			fromSecret[e.Name] = false
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		v, ok := opened[ref.Name][ref.Key]
		if !ok {
			return out, fmt.Errorf("spec.run.env %s: secret %q has no key %q", e.Name, ref.Name, ref.Key)
		}
		out.env[e.Name] = v
		fromSecret[e.Name] = true
	}
	out.hashSecrets(names, uids, fromSecret)
	return out, nil
}

// openSecret reads the Secret named name and opens its sealed values.
func openSecret(ctx context.Context, st store.Reader, kr *sealed.Keyring, name string) (map[string]string, string, error) {
	o, err := st.Get(ctx, api.KindSecret, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", fmt.Errorf("secret %q does not exist", name)
	}
	if err != nil {
		return nil, "", fmt.Errorf("secret %q: %w", name, err)
	}
	sec := o.(*api.Secret)
	if len(sec.Spec.Data) > 0 {
		// Written to the store around the API (a hand-edited file).
		return nil, "", fmt.Errorf("secret %q holds unsealed spec.data: write secrets through the API (bakery secret set, bakery apply), which seals them", name)
	}
	vals := map[string]string{}
	for k, v := range sec.Spec.Sealed {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, "", fmt.Errorf("secret %q key %s: not a sealed value", name, k)
		}
		pt, err := kr.Open(b, api.SecretAD(name, k))
		if err != nil {
			return nil, "", fmt.Errorf("secret %q key %s: %w", name, k, err)
		}
		vals[k] = string(pt)
	}
	return vals, sec.Metadata.UID, nil
}

// hashSecrets lists the values that came from secrets (masked in logs)
// and hashes them, keyed by the secrets' names and uids: a changed value
// or a re-created secret changes the hash, hence the revision.
func (out *resolvedEnv) hashSecrets(names []string, uids map[string]string, fromSecret map[string]bool) {
	var key []byte
	for _, n := range names {
		key = append(key, n+"="+uids[n]+"\x00"...)
	}
	mac := hmac.New(sha256.New, key)
	vars := make([]string, 0, len(fromSecret))
	for k, yes := range fromSecret {
		if yes {
			vars = append(vars, k)
		}
	}
	sort.Strings(vars)
	for _, k := range vars {
		fmt.Fprintf(mac, "%s=%d:%s\x00", k, len(out.env[k]), out.env[k])
		out.secret = append(out.secret, out.env[k])
	}
	if len(vars) > 0 {
		out.hash = hex.EncodeToString(mac.Sum(nil))[:16]
	}
}

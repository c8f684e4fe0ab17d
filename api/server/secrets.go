package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
)

// sealSecrets seals the plain values (spec.data) of every Secret among
// objs into spec.sealed with the server's key, in place, and checks that
// the sealed values given (from `bakery export --secrets`) open with it.
// A value equal to the one stored keeps its stored sealed form, so that
// applying the same secret again changes nothing (no new generation, no
// rollout). In a bundle, field paths name the document (objs[i] is
// document i+1).
func (s *Server) sealSecrets(ctx context.Context, objs []api.Object, bundle bool) error {
	for i, o := range objs {
		sec, ok := o.(*api.Secret)
		if !ok {
			continue
		}
		prefix := ""
		if bundle {
			prefix = docPrefix(i+1, api.KindSecret, sec.Metadata.Name) + ": "
		}
		if err := s.sealSecret(ctx, sec, prefix); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) sealSecret(ctx context.Context, sec *api.Secret, prefix string) error {
	name := sec.Metadata.Name
	kr := s.cfg.Keyring
	if len(sec.Spec.Data)+len(sec.Spec.Sealed) > 0 && (kr == nil || kr.Len() == 0) {
		return badField(prefix+"spec", "this server has no encryption key to seal secrets with: start it with %s", sealed.EncryptionKeyHint)
	}
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(sec.Spec.Sealed)) {
		v := sec.Spec.Sealed[k]
		b, _ := base64.StdEncoding.DecodeString(v) // validated
		if _, err := kr.Open(b, api.SecretAD(name, k)); err != nil {
			return badField(prefix+"spec.sealed."+k, "does not open with this server's encryption keys (%v); a sealed value opens only on a server holding the key it was sealed with, under the same secret name and key", err)
		}
		out[k] = v
	}
	var cur map[string]string
	if len(sec.Spec.Data) > 0 {
		o, err := s.store.Get(ctx, api.KindSecret, name)
		switch {
		case err == nil:
			cur = o.(*api.Secret).Spec.Sealed
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	for k, v := range sec.Spec.Data {
		ad := api.SecretAD(name, k)
		if old, ok := cur[k]; ok {
			if b, err := base64.StdEncoding.DecodeString(old); err == nil {
				if pt, err := kr.Open(b, ad); err == nil && string(pt) == v {
					out[k] = old
					continue
				}
			}
		}
		b, err := kr.Seal([]byte(v), ad)
		if err != nil {
			return err
		}
		out[k] = base64.StdEncoding.EncodeToString(b)
	}
	sec.Spec.Data = nil
	sec.Spec.Sealed = out
	if len(out) == 0 {
		sec.Spec.Sealed = nil
	}
	return nil
}

// Redact returns o as the API shows it: a Secret without its values (not
// even sealed), its keys listed in status.keys. Other objects are
// returned as they are. Every path that shows objects to users (API
// answers, the UI) goes through it.
func Redact(o api.Object) api.Object {
	sec, ok := o.(*api.Secret)
	if !ok {
		return o
	}
	c := sec.DeepCopyObject().(*api.Secret)
	c.Status.Keys = c.Spec.Keys()
	c.Spec.Data, c.Spec.Sealed = nil, nil
	return c
}

// present is Redact unless the request asks for sealed values
// (?sealed=true, for `bakery export --secrets`): then a Secret keeps
// spec.sealed, which opens only with the server's key.
func present(r *http.Request, o api.Object) (api.Object, error) {
	keep, err := sealedParam(r)
	if err != nil {
		return nil, err
	}
	if keep {
		if sec, ok := o.(*api.Secret); ok {
			c := sec.DeepCopyObject().(*api.Secret)
			c.Status.Keys = c.Spec.Keys()
			c.Spec.Data = nil
			return c, nil
		}
		return o, nil
	}
	return Redact(o), nil
}

func sealedParam(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("sealed")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badField("sealed", "must be true or false, not %q", v)
	}
	return b, nil
}

// maskSealed replaces each sealed value of a Secret by a short
// fingerprint of its sealed form, for diffs: a changed value shows as a
// changed fingerprint, and neither the value nor its ciphertext is shown.
func maskSealed(o api.Object) api.Object {
	sec, ok := o.(*api.Secret)
	if !ok {
		return o
	}
	c := sec.DeepCopyObject().(*api.Secret)
	for k, v := range c.Spec.Sealed {
		sum := sha256.Sum256([]byte(v))
		c.Spec.Sealed[k] = "(sealed " + hex.EncodeToString(sum[:4]) + ")"
	}
	return c
}

// reencrypt seals every sealed value the server holds again with the
// current key — every kind in the registry (store.ResealAll: Secret
// values, the SSH identity, webhook secrets, GitHub tokens) — so that
// older keys can be dropped. A value that does not open is a 409 naming
// it; Secret values change only when all of them open.
func (s *Server) reencrypt(w http.ResponseWriter, r *http.Request) (any, error) {
	kr := s.cfg.Keyring
	if kr == nil || kr.Len() == 0 {
		return nil, errorf(http.StatusConflict, "this server has no encryption key: start it with %s", sealed.EncryptionKeyHint)
	}
	kinds, err := store.ResealAll(r.Context(), s.store, kr)
	if errors.Is(err, sealed.ErrUnknownKey) || errors.Is(err, sealed.ErrTampered) || errors.Is(err, sealed.ErrFormat) || errors.Is(err, store.ErrInvalid) {
		return nil, errorf(http.StatusConflict, "%v", err)
	}
	if err != nil {
		return nil, err
	}
	res := api.ReencryptResult{KeyID: kr.KeyID(), Kinds: kinds}
	for _, k := range kinds {
		switch k.What {
		case store.SecretValues:
			res.Values, res.Resealed = k.Values, k.Resealed
		case store.SSHIdentitySetting.What:
			res.Identity = k.Resealed > 0
		}
	}
	if list, err := s.store.List(r.Context(), api.KindSecret, store.ListOptions{}); err == nil {
		res.Secrets = len(list)
	}
	s.log.Info("re-encrypted every sealed value", "keyID", res.KeyID, "kinds", kinds)
	return res, nil
}

package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"bakery.dev/bakery/api"
)

// The registry of sealed values. Every value the server seals with its
// keyring (package sealed) is one of these:
//
//   - the values of Secrets (spec.sealed), bound to api.SecretAD;
//   - a setting of one of the kinds in SealedSettings, bound to the
//     setting's name or the kind's fixed additional data.
//
// Code that seals a setting names it and binds it through its
// SealedSetting (Name, Seal, Open), and ResealAll — the step of a key
// rotation, POST /api/v1/reencrypt — walks exactly this registry: a new
// kind of sealed setting is added to SealedSettings, and rotation cannot
// forget it.

// SecretValues is the What of Secrets' values in ResealAll's result.
const SecretValues = "Secret value"

// Keyring is what the registry needs of a keyring (*sealed.Keyring).
type Keyring interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
	Reseal(sealed, associatedData []byte) ([]byte, bool, error)
}

// SealedSetting is a kind of setting whose values are sealed: one setting
// (Fixed) or one per id, named Prefix + the first IDLen hex digits of the
// id's SHA-256.
type SealedSetting struct {
	// What names the kind in messages and in ReencryptResult.
	What string
	// Fixed is the one setting's name; else Prefix and IDLen name one
	// setting per id.
	Fixed  string
	Prefix string
	IDLen  int
	// AD is the additional data values are bound to; nil: the setting's
	// name, so that a value copied to another setting does not open.
	AD []byte
}

// The kinds of sealed settings.
var (
	// SSHIdentitySetting is the control plane's SSH key pair with the
	// PostgreSQL store (the file store keeps it in a 0600 file).
	SSHIdentitySetting = SealedSetting{What: "SSH identity", Fixed: "ssh-identity", AD: []byte("bakery ssh-identity")}
	// WebhookSecretSetting is a repository's webhook secret (id: the
	// repository key, api.RepoKey).
	WebhookSecretSetting = SealedSetting{What: "webhook secret", Prefix: "webhook-", IDLen: 40}
	// GitHubTokenSetting is the GitHub OAuth token of a signed-in user or
	// API token (id: its owner).
	GitHubTokenSetting = SealedSetting{What: "GitHub token", Prefix: "github-token-", IDLen: 32}
)

// SealedSettings is every kind of sealed setting; ResealAll reseals them
// all.
var SealedSettings = []SealedSetting{SSHIdentitySetting, WebhookSecretSetting, GitHubTokenSetting}

// Name is the setting holding id's value (the fixed name for a Fixed
// kind).
func (k SealedSetting) Name(id string) string {
	if k.Fixed != "" {
		return k.Fixed
	}
	sum := sha256.Sum256([]byte(id))
	return k.Prefix + hex.EncodeToString(sum[:])[:k.IDLen]
}

// Matches reports whether name is a setting of this kind.
func (k SealedSetting) Matches(name string) bool {
	if k.Fixed != "" {
		return name == k.Fixed
	}
	rest, ok := strings.CutPrefix(name, k.Prefix)
	if !ok || len(rest) != k.IDLen {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil && strings.ToLower(rest) == rest
}

// ad is the additional data of setting name.
func (k SealedSetting) ad(name string) []byte {
	if k.AD != nil {
		return k.AD
	}
	return []byte(name)
}

// Seal seals plain for the setting name (of this kind).
func (k SealedSetting) Seal(kr Keyring, name string, plain []byte) ([]byte, error) {
	return kr.Seal(plain, k.ad(name))
}

// Open opens the value b of the setting name (of this kind).
func (k SealedSetting) Open(kr Keyring, name string, b []byte) ([]byte, error) {
	return kr.Open(b, k.ad(name))
}

// ResealAll seals every sealed value st holds again with kr's current key
// (values sealed with it already are left alone): the values of every
// Secret, in one transaction, then every setting of every kind in
// SealedSettings when st keeps settings. A value kr cannot open stops it
// with an error naming the value; running it again after a fix finishes
// the rest. The result counts, per kind, the values read and resealed.
func ResealAll(ctx context.Context, st Store, kr Keyring) ([]api.ResealCount, error) {
	secrets, err := resealSecrets(ctx, st, kr)
	if err != nil {
		return nil, err
	}
	out := []api.ResealCount{secrets}
	ss, ok := st.(Settings)
	for _, k := range SealedSettings {
		c := api.ResealCount{What: k.What}
		if ok {
			if c, err = resealSettings(ctx, ss, kr, k); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// resealSecrets reseals the values of every Secret.
func resealSecrets(ctx context.Context, st Store, kr Keyring) (api.ResealCount, error) {
	var c api.ResealCount
	err := st.Txn(ctx, func(tx Tx) error {
		c = api.ResealCount{What: SecretValues}
		list, err := tx.List(ctx, api.KindSecret, ListOptions{})
		if err != nil {
			return err
		}
		for _, o := range list {
			sec := o.(*api.Secret)
			changed := false
			for key, v := range sec.Spec.Sealed {
				c.Values++
				b, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					return fmt.Errorf("%w: secret %s key %s: not a sealed value", ErrInvalid, sec.Metadata.Name, key)
				}
				out, ch, err := kr.Reseal(b, api.SecretAD(sec.Metadata.Name, key))
				if err != nil {
					return fmt.Errorf("secret %s key %s: %w", sec.Metadata.Name, key, err)
				}
				if ch {
					sec.Spec.Sealed[key] = base64.StdEncoding.EncodeToString(out)
					c.Resealed++
					changed = true
				}
			}
			if changed {
				if _, err := tx.Update(ctx, sec); err != nil {
					return fmt.Errorf("secret %s: %w", sec.Metadata.Name, err)
				}
			}
		}
		return nil
	})
	return c, err
}

// resealSettings reseals every setting of kind k.
func resealSettings(ctx context.Context, ss Settings, kr Keyring, k SealedSetting) (api.ResealCount, error) {
	c := api.ResealCount{What: k.What}
	prefix := k.Prefix
	if k.Fixed != "" {
		prefix = k.Fixed
	}
	names, err := ss.ListSettings(ctx, prefix)
	if err != nil {
		return c, fmt.Errorf("%s: %w", k.What, err)
	}
	for _, name := range names {
		if !k.Matches(name) {
			continue
		}
		b, err := ss.GetSetting(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return c, fmt.Errorf("%s (setting %s): %w", k.What, name, err)
		}
		c.Values++
		out, ch, err := kr.Reseal(b, k.ad(name))
		if err != nil {
			return c, fmt.Errorf("%s (setting %s): %w", k.What, name, err)
		}
		if !ch {
			continue
		}
		if err := ss.PutSetting(ctx, name, out); err != nil {
			return c, fmt.Errorf("%s (setting %s): %w", k.What, name, err)
		}
		c.Resealed++
	}
	return c, nil
}

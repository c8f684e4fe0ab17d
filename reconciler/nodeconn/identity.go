package nodeconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/sshexec"
)

// Identity is the key pair the control plane logs in to nodes with.
type Identity struct {
	PrivatePEM []byte
	// AuthorizedKey is the public key as one authorized_keys line.
	AuthorizedKey string
}

// LoadOrCreateIdentity reads the control plane's SSH key from dir
// (id_ed25519, 0600, and id_ed25519.pub), minting it on first use. The
// private key is never printed or logged. It is the identity of a server
// on the file store; servers sharing a database use StoredIdentity.
func LoadOrCreateIdentity(dir string) (Identity, error) {
	priv := filepath.Join(dir, "id_ed25519")
	pub := priv + ".pub"
	if b, err := os.ReadFile(priv); err == nil {
		p, err := os.ReadFile(pub)
		if err != nil {
			return Identity{}, fmt.Errorf("ssh identity: %w", err)
		}
		if _, err := sshexec.ParsePrivateKey(b); err != nil {
			return Identity{}, fmt.Errorf("ssh identity %s: %w", priv, err)
		}
		return Identity{PrivatePEM: b, AuthorizedKey: strings.TrimSpace(string(p))}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return Identity{}, fmt.Errorf("ssh identity: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Identity{}, fmt.Errorf("ssh identity: %w", err)
	}
	pem, authorized, err := sshexec.GenerateKey(keyComment())
	if err != nil {
		return Identity{}, err
	}
	// Public key first: a crash in between leaves no private key without
	// its public half.
	if err := writeFileAtomic(pub, []byte(authorized+"\n"), 0o644); err != nil {
		return Identity{}, err
	}
	if err := writeFileAtomic(priv, pem, 0o600); err != nil {
		return Identity{}, err
	}
	return Identity{PrivatePEM: pem, AuthorizedKey: authorized}, nil
}

func keyComment() string {
	host, _ := os.Hostname()
	return "bakery@" + host
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	return renameio.WriteFile(path, b, mode)
}

// IdentitySetting is the store setting (store.Settings) that holds the
// control plane's sealed SSH identity: a kind of sealed setting in the
// registry (store.SSHIdentitySetting), which a key rotation reseals.
var IdentitySetting = store.SSHIdentitySetting.Name("")

// identityAD is the associated data the identity is sealed with: a sealed
// value copied to another setting does not open as an identity.
var identityAD = store.SSHIdentitySetting.AD

// storedIdentity is the JSON sealed into the setting.
type storedIdentity struct {
	PrivatePEM    string `json:"privatePEM"`
	AuthorizedKey string `json:"authorizedKey"`
}

// StoredIdentity returns the control plane's SSH identity kept in st (the
// setting IdentitySetting), sealed with kr (AES-256-GCM, package sealed),
// so that every server sharing the store uses one key pair. The first
// server to start mints it; servers starting at once race through
// CreateSetting, exactly one wins and the others read the winner's key.
// The private key is never stored in clear, printed or logged.
//
// A stored identity that kr cannot open (another encryption key, or a
// changed value) is an error naming BAKERY_ENCRYPTION_KEY; it is never
// replaced by a new key pair, which would lock the control plane out of
// every node.
func StoredIdentity(ctx context.Context, st store.Settings, kr *sealed.Keyring) (Identity, error) {
	if kr == nil || kr.Len() == 0 {
		return Identity{}, fmt.Errorf("ssh identity: no encryption key: set %s", sealed.EncryptionKeyHint)
	}
	for range 3 {
		b, err := st.GetSetting(ctx, IdentitySetting)
		if err == nil {
			return openIdentity(b, kr)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return Identity{}, fmt.Errorf("ssh identity: %w", err)
		}
		id, val, err := mintIdentity(kr)
		if err != nil {
			return Identity{}, err
		}
		err = st.CreateSetting(ctx, IdentitySetting, val)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, store.ErrAlreadyExists) {
			return Identity{}, fmt.Errorf("ssh identity: store: %w", err)
		}
		// Another control plane minted it first: use its key.
	}
	return Identity{}, errors.New("ssh identity: the stored identity keeps appearing and disappearing; is another control plane deleting it?")
}

func mintIdentity(kr *sealed.Keyring) (Identity, []byte, error) {
	pem, authorized, err := sshexec.GenerateKey(keyComment())
	if err != nil {
		return Identity{}, nil, err
	}
	js, err := json.Marshal(storedIdentity{PrivatePEM: string(pem), AuthorizedKey: authorized})
	if err != nil {
		return Identity{}, nil, fmt.Errorf("ssh identity: %w", err)
	}
	val, err := kr.Seal(js, identityAD)
	if err != nil {
		return Identity{}, nil, fmt.Errorf("ssh identity: %w", err)
	}
	return Identity{PrivatePEM: pem, AuthorizedKey: authorized}, val, nil
}

func openIdentity(b []byte, kr *sealed.Keyring) (Identity, error) {
	js, err := kr.Open(b, identityAD)
	switch {
	case errors.Is(err, sealed.ErrUnknownKey):
		return Identity{}, fmt.Errorf("ssh identity: the stored SSH key pair was sealed with an encryption key this server does not have: "+
			"start every server sharing the database with the same %s; "+
			"to rotate, put the new key first and keep the old one after it, comma-separated (%w)", sealed.EncryptionKeyHint, err)
	case errors.Is(err, sealed.ErrTampered):
		return Identity{}, fmt.Errorf("ssh identity: the stored SSH key pair does not decrypt with %s: "+
			"it was changed or damaged in the database: %w", sealed.EncryptionKeyHint, err)
	case err != nil:
		return Identity{}, fmt.Errorf("ssh identity: the stored value (setting %q) is not a sealed SSH key pair: %w", IdentitySetting, err)
	}
	var si storedIdentity
	if err := json.Unmarshal(js, &si); err != nil {
		return Identity{}, fmt.Errorf("ssh identity: the stored key pair is not valid JSON: %w", err)
	}
	signer, err := sshexec.ParsePrivateKey([]byte(si.PrivatePEM))
	if err != nil {
		return Identity{}, fmt.Errorf("ssh identity: the stored private key: %w", err)
	}
	if pub := sshexec.FormatPublicKey(signer.PublicKey()); si.AuthorizedKey != pub && !strings.HasPrefix(si.AuthorizedKey, pub+" ") {
		return Identity{}, errors.New("ssh identity: the stored public key is not the private key's")
	}
	return Identity{PrivatePEM: []byte(si.PrivatePEM), AuthorizedKey: si.AuthorizedKey}, nil
}

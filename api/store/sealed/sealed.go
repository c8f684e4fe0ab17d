// Package sealed is Bakery's one encryption mechanism for secrets at rest:
// the control plane's SSH private key in the postgres store today, webhook
// secrets and application secrets later (docs/security.md).
//
// A Keyring holds a current 256-bit key and older ones. Seal encrypts with
// the current key using AES-256-GCM (a random 96-bit nonce per message);
// Open decrypts with whichever key of the ring sealed the value. Rotation:
// put a new key first and keep the old ones after it; values sealed with
// an old key still open, new values are sealed with the new key, and an
// old key can be dropped once every value has been sealed again.
//
// A sealed value is
//
//	version (1 byte, 1) | key id (4 bytes) | nonce (12 bytes) | ciphertext+tag
//
// where the key id is the first 4 bytes of the SHA-256 of the key, so Open
// picks the right key without trying them all (the id reveals nothing
// useful about the key). The version and key id are authenticated along
// with the caller's associated data, which binds a value to its purpose
// (e.g. "bakery ssh-identity"): a value copied to another place does not
// open there.
//
// Keys are written as standard or URL-safe base64 (padded or not) of 32
// random bytes, e.g. from `head -c 32 /dev/urandom | base64`; a keyring is
// a comma-separated list of keys, current first.
package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a key in bytes (AES-256).
const KeySize = 32

// EncryptionKeyHint names where a server's encryption key comes from, for
// error messages.
const EncryptionKeyHint = "BAKERY_ENCRYPTION_KEY (or --encryption-key-file)"

const (
	version1  byte = 1
	idSize         = 4
	nonceSize      = 12
	headerLen      = 1 + idSize + nonceSize
)

var (
	// ErrUnknownKey means the value was sealed with a key that is not in
	// the keyring (a wrong or dropped key).
	ErrUnknownKey = errors.New("sealed: the value was sealed with a key that is not in the keyring")
	// ErrTampered means the value does not authenticate under its key: it
	// was changed, truncated, or opened with other associated data.
	ErrTampered = errors.New("sealed: the value does not authenticate (tampered, truncated or sealed for another purpose)")
	// ErrFormat means the value is not a sealed value this package knows.
	ErrFormat = errors.New("sealed: not a sealed value")
)

type key struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// Keyring is a current key and older ones still accepted by Open. It is
// safe for concurrent use.
type Keyring struct {
	keys []key // keys[0] is current
}

// ParseKeyring reads a comma-separated list of base64 (standard or
// URL-safe, padded or not) 32-byte keys; the first is the current one.
// Spaces and newlines around keys are ignored. A key listed twice is an
// error (it is most likely a copy-paste mistake).
func ParseKeyring(s string) (*Keyring, error) {
	parts := strings.Split(s, ",")
	kr := &Keyring{}
	seen := map[[idSize]byte]int{}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			if len(parts) == 1 {
				return nil, errors.New("sealed: empty keyring: want base64 of 32 random bytes, e.g. from `head -c 32 /dev/urandom | base64`")
			}
			return nil, fmt.Errorf("sealed: key %d of %d is empty", i+1, len(parts))
		}
		raw, err := decodeKey(p)
		if err != nil {
			return nil, fmt.Errorf("sealed: key %d of %d: %w", i+1, len(parts), err)
		}
		k, err := newKey(raw)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[k.id]; dup {
			return nil, fmt.Errorf("sealed: key %d of %d is the same as key %d", i+1, len(parts), j+1)
		}
		seen[k.id] = i
		kr.keys = append(kr.keys, k)
	}
	return kr, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes, want %d (base64 of 32 random bytes)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64 (want base64 of %d random bytes)", KeySize)
}

func newKey(raw []byte) (key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, fmt.Errorf("sealed: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, fmt.Errorf("sealed: %w", err)
	}
	sum := sha256.Sum256(raw)
	var k key
	copy(k.id[:], sum[:idSize])
	k.aead = aead
	return k, nil
}

// NewKey returns a new random key, base64 (standard encoding), for a
// keyring.
func NewKey() string {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b) // never fails (crypto/rand panics if it cannot read)
	return base64.StdEncoding.EncodeToString(b)
}

// KeyID returns the id of the current key, in hex: it names the key in
// messages without revealing it.
func (kr *Keyring) KeyID() string {
	if kr == nil || len(kr.keys) == 0 {
		return ""
	}
	return fmt.Sprintf("%x", kr.keys[0].id)
}

// Len returns how many keys the keyring holds.
func (kr *Keyring) Len() int {
	if kr == nil {
		return 0
	}
	return len(kr.keys)
}

// Seal encrypts plaintext with the current key. associatedData is
// authenticated, not encrypted: Open must be given the same.
func (kr *Keyring) Seal(plaintext, associatedData []byte) ([]byte, error) {
	if kr == nil || len(kr.keys) == 0 {
		return nil, errors.New("sealed: no key")
	}
	k := kr.keys[0]
	out := make([]byte, headerLen, headerLen+len(plaintext)+k.aead.Overhead())
	out[0] = version1
	copy(out[1:], k.id[:])
	if _, err := rand.Read(out[1+idSize : headerLen]); err != nil {
		return nil, fmt.Errorf("sealed: nonce: %w", err)
	}
	return k.aead.Seal(out, out[1+idSize:headerLen], plaintext, additional(out[:1+idSize], associatedData)), nil
}

// Open decrypts a value made by Seal with any key of the keyring. It fails
// with ErrFormat (not a sealed value), ErrUnknownKey (sealed with a key the
// keyring does not hold) or ErrTampered (changed, or other associated
// data).
func (kr *Keyring) Open(sealed, associatedData []byte) ([]byte, error) {
	if kr == nil || len(kr.keys) == 0 {
		return nil, errors.New("sealed: no key")
	}
	if len(sealed) < 1 {
		return nil, fmt.Errorf("%w: empty", ErrFormat)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w: unknown version %d", ErrFormat, sealed[0])
	}
	if len(sealed) < headerLen+kr.keys[0].aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrFormat, len(sealed))
	}
	id := sealed[1 : 1+idSize]
	for _, k := range kr.keys {
		if !bytes.Equal(k.id[:], id) {
			continue
		}
		pt, err := k.aead.Open(nil, sealed[1+idSize:headerLen], sealed[headerLen:], additional(sealed[:1+idSize], associatedData))
		if err != nil {
			return nil, ErrTampered
		}
		return pt, nil
	}
	return nil, fmt.Errorf("%w (key id %x; the keyring has %s)", ErrUnknownKey, id, kr.ids())
}

func (kr *Keyring) ids() string {
	s := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		s[i] = fmt.Sprintf("%x", k.id)
	}
	return strings.Join(s, ", ")
}

// additional is what GCM authenticates besides the ciphertext: the header
// (version and key id) and the caller's associated data.
func additional(header, ad []byte) []byte {
	b := make([]byte, 0, len(header)+len(ad))
	return append(append(b, header...), ad...)
}

// KeyIDOf returns the id (hex) of the key that sealed a value, or "" when
// the value is not a sealed value this package knows.
func KeyIDOf(sealed []byte) string {
	if len(sealed) < headerLen || sealed[0] != version1 {
		return ""
	}
	return fmt.Sprintf("%x", sealed[1:1+idSize])
}

// Reseal opens a value with any key of the keyring and, unless the current
// key sealed it already, seals it again with the current key: the step
// of a key rotation after which an old key can be dropped. It reports
// whether the value changed. A value the keyring cannot open is an error
// (as from Open) and nothing is sealed.
func (kr *Keyring) Reseal(sealed, associatedData []byte) ([]byte, bool, error) {
	pt, err := kr.Open(sealed, associatedData)
	if err != nil {
		return nil, false, err
	}
	if KeyIDOf(sealed) == kr.KeyID() {
		return sealed, false, nil
	}
	out, err := kr.Seal(pt, associatedData)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

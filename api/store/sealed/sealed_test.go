package sealed

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func mustKeyring(t *testing.T, s string) *Keyring {
	t.Helper()
	kr, err := ParseKeyring(s)
	if err != nil {
		t.Fatalf("ParseKeyring(%q): %v", s, err)
	}
	return kr
}

func TestRoundTrip(t *testing.T) {
	kr := mustKeyring(t, NewKey())
	ad := []byte("bakery test")
	for _, pt := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("secret "), 1000)} {
		s, err := kr.Seal(pt, ad)
		if err != nil {
			t.Fatal(err)
		}
		if len(pt) >= 8 && bytes.Contains(s, pt) { // a short one may occur by chance
			t.Fatal("the sealed value holds the plaintext")
		}
		if s[0] != 1 || len(s) != 1+4+12+len(pt)+16 {
			t.Fatalf("sealed value: version %d, %d bytes for %d of plaintext", s[0], len(s), len(pt))
		}
		got, err := kr.Open(s, ad)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, want %q", got, pt)
		}
	}
	// Two seals of one plaintext differ (random nonce).
	a, _ := kr.Seal([]byte("same"), ad)
	b, _ := kr.Seal([]byte("same"), ad)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal")
	}
}

func TestAssociatedDataMismatch(t *testing.T) {
	kr := mustKeyring(t, NewKey())
	s, err := kr.Seal([]byte("secret"), []byte("bakery ssh-identity"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range [][]byte{nil, []byte("bakery webhook-secret"), []byte("bakery ssh-identity ")} {
		if _, err := kr.Open(s, ad); !errors.Is(err, ErrTampered) {
			t.Errorf("Open with associated data %q: err = %v, want ErrTampered", ad, err)
		}
	}
}

func TestTampering(t *testing.T) {
	kr := mustKeyring(t, NewKey())
	ad := []byte("ad")
	s, err := kr.Seal([]byte("secret value"), ad)
	if err != nil {
		t.Fatal(err)
	}
	// Every flipped byte past the version is detected: in the key id as
	// an unknown key, elsewhere as tampering.
	for i := 1; i < len(s); i++ {
		c := bytes.Clone(s)
		c[i] ^= 0x01
		_, err := kr.Open(c, ad)
		switch {
		case i < 5 && !errors.Is(err, ErrUnknownKey):
			t.Errorf("byte %d flipped (key id): err = %v, want ErrUnknownKey", i, err)
		case i >= 5 && !errors.Is(err, ErrTampered):
			t.Errorf("byte %d flipped: err = %v, want ErrTampered", i, err)
		}
	}
	c := bytes.Clone(s)
	c[0] = 2
	if _, err := kr.Open(c, ad); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("unknown version: err = %v", err)
	}
	for _, short := range [][]byte{nil, s[:1], s[:17], s[:17+15]} {
		if _, err := kr.Open(short, ad); !errors.Is(err, ErrFormat) {
			t.Errorf("Open of %d bytes: err = %v, want ErrFormat", len(short), err)
		}
	}
	if _, err := kr.Open(append(bytes.Clone(s), 0), ad); !errors.Is(err, ErrTampered) {
		t.Errorf("appended byte: err = %v, want ErrTampered", err)
	}
	if _, err := kr.Open(s[:len(s)-1], ad); !errors.Is(err, ErrTampered) {
		t.Errorf("truncated: err = %v, want ErrTampered", err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := NewKey(), NewKey()
	old := mustKeyring(t, oldKey)
	ad := []byte("ad")
	s, err := old.Seal([]byte("sealed with the old key"), ad)
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustKeyring(t, newKey+", "+oldKey)
	if rotated.Len() != 2 {
		t.Fatalf("Len = %d", rotated.Len())
	}
	got, err := rotated.Open(s, ad)
	if err != nil || string(got) != "sealed with the old key" {
		t.Fatalf("rotated keyring opens an old value: %q, %v", got, err)
	}
	// New values are sealed with the new key: the old keyring cannot
	// open them, a keyring of the new key alone can.
	s2, err := rotated.Seal([]byte("new"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Open(s2, ad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old keyring opens a new value: err = %v, want ErrUnknownKey", err)
	}
	onlyNew := mustKeyring(t, newKey)
	if got, err := onlyNew.Open(s2, ad); err != nil || string(got) != "new" {
		t.Fatalf("new key alone: %q, %v", got, err)
	}
	if onlyNew.KeyID() != rotated.KeyID() || onlyNew.KeyID() == old.KeyID() {
		t.Fatalf("key ids: new %s, rotated %s, old %s", onlyNew.KeyID(), rotated.KeyID(), old.KeyID())
	}
	// Without the old key, the old value fails clearly.
	_, err = onlyNew.Open(s, ad)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), old.KeyID()) {
		t.Fatalf("keyring without the old key: err = %v, want ErrUnknownKey naming key id %s", err, old.KeyID())
	}
}

func TestParseKeyringEncodings(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0xfe}, 11)[:32] // encodes with + / or - _
	want := mustKeyring(t, base64.StdEncoding.EncodeToString(raw)).KeyID()
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		"  " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		if got := mustKeyring(t, s).KeyID(); got != want {
			t.Errorf("%q: key id %s, want %s", s, got, want)
		}
	}
}

func TestParseKeyringErrors(t *testing.T) {
	k := NewKey()
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct{ in, want string }{
		{"", "empty keyring"},
		{"   ", "empty keyring"},
		{"not base64!", "key 1 of 1: not base64"},
		{short, "key 1 of 1: decodes to 16 bytes, want 32"},
		{k + ",", "key 2 of 2 is empty"},
		{k + ",," + NewKey(), "key 2 of 3 is empty"},
		{k + "," + short, "key 2 of 2: decodes to 16 bytes"},
		{k + "," + k, "key 2 of 2 is the same as key 1"},
	} {
		_, err := ParseKeyring(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKeyring(%q): err = %v, want one containing %q", tc.in, err, tc.want)
		}
		if err != nil && len(tc.in) > 10 && strings.Contains(err.Error(), k) {
			t.Errorf("ParseKeyring(%q): the error shows the key: %v", tc.in, err)
		}
	}
}

func TestNilKeyring(t *testing.T) {
	var kr *Keyring
	if _, err := kr.Seal([]byte("x"), nil); err == nil {
		t.Error("Seal with a nil keyring succeeded")
	}
	if _, err := kr.Open([]byte("x"), nil); err == nil {
		t.Error("Open with a nil keyring succeeded")
	}
}

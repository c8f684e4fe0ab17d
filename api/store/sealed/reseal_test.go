package sealed

import (
	"bytes"
	"errors"
	"testing"
)

// TestReseal walks a rotation: values sealed with the old key open with
// [new, old], Reseal moves them to the new key, and then [new] alone
// opens every one while [old] alone opens none.
func TestReseal(t *testing.T) {
	oldKey, newKey := NewKey(), NewKey()
	before := mustKeyring(t, oldKey)
	ad := []byte("bakery secret db/PASSWORD")
	var vals [][]byte
	for _, pt := range []string{"a", "hunter2-canary", ""} {
		s, err := before.Seal([]byte(pt), ad)
		if err != nil {
			t.Fatal(err)
		}
		vals = append(vals, s)
	}
	rotating := mustKeyring(t, newKey+","+oldKey)
	after := mustKeyring(t, newKey)
	for i, s := range vals {
		if got := KeyIDOf(s); got != before.KeyID() {
			t.Fatalf("KeyIDOf = %q, want %q", got, before.KeyID())
		}
		if _, err := after.Open(s, ad); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("the new key alone opens an old value: %v", err)
		}
		r, changed, err := rotating.Reseal(s, ad)
		if err != nil || !changed {
			t.Fatalf("Reseal: changed %v, err %v", changed, err)
		}
		if KeyIDOf(r) != after.KeyID() {
			t.Fatalf("resealed with key %s, want %s", KeyIDOf(r), after.KeyID())
		}
		want, _ := before.Open(s, ad)
		got, err := after.Open(r, ad)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("value %d after the old key is dropped: %q, %v; want %q", i, got, err, want)
		}
		if _, err := before.Open(r, ad); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("the old key still opens a resealed value: %v", err)
		}
		// Resealing again changes nothing.
		if r2, changed, err := rotating.Reseal(r, ad); err != nil || changed || !bytes.Equal(r2, r) {
			t.Fatalf("second Reseal: changed %v, err %v", changed, err)
		}
		// A value for another purpose does not reseal.
		if _, _, err := rotating.Reseal(s, []byte("other")); !errors.Is(err, ErrTampered) {
			t.Fatalf("Reseal with other associated data: %v", err)
		}
	}
	if KeyIDOf([]byte("x")) != "" {
		t.Fatal("KeyIDOf of garbage is not empty")
	}
}

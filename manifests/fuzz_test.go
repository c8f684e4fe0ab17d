package manifests_test

import (
	"bytes"
	"errors"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/manifests"
)

// FuzzDecode checks that Decode never panics, that it returns either
// objects or Errors (never both), and that what it accepts encodes to a
// fixed point: Encode(Decode(Encode(objs))) == Encode(objs).
func FuzzDecode(f *testing.F) {
	f.Add([]byte(nodeYAML + "---\n" + webYAML))
	f.Add([]byte(`[{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"a"},"spec":{"address":"x"}}]`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"bakery.dev/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"healthCheck":{"timeout":"2s"}}}]}`))
	f.Add([]byte("--- |\n  x\n...\n---\n- a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := manifests.Decode(data)
		if err != nil {
			var es manifests.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty Errors", err, err)
			}
			if objs != nil {
				t.Fatalf("Decode returned %d objects and an error", len(objs))
			}
			_ = err.Error()
			return
		}
		for _, enc := range []func(...api.Object) ([]byte, error){manifests.Encode, manifests.EncodeJSON} {
			first, err := enc(objs...)
			if err != nil {
				t.Fatalf("encode decoded objects: %v", err)
			}
			again, err := manifests.Decode(first)
			if err != nil {
				t.Fatalf("decode encoded objects: %v\n%s", err, first)
			}
			second, err := enc(again...)
			if err != nil {
				t.Fatalf("encode again: %v", err)
			}
			if !bytes.Equal(first, second) {
				t.Fatalf("encoding is not a fixed point:\n%s\n----\n%s", first, second)
			}
		}
	})
}

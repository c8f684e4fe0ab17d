package node

import (
	"testing"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

package pgstore_test

import (
	"errors"
	"testing"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/storetest"
)

func TestSettingsConformance(t *testing.T) {
	storetest.RunSettings(t, func(t *testing.T) store.Store {
		return open(t, pgtest.DatabaseURL(t))
	})
}

// Two servers on one database share settings: a value created through one
// is read through the other, and the other cannot create it again.
func TestSettingsAcrossStores(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	if err := a.CreateSetting(ctx, "shared", []byte("from a")); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateSetting(ctx, "shared", []byte("from b")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("create on b: err = %v, want ErrAlreadyExists", err)
	}
	if v, err := b.GetSetting(ctx, "shared"); err != nil || string(v) != "from a" {
		t.Fatalf("get on b: %q, %v", v, err)
	}
}

// Attempts are counted in the database: two stores on one database (two
// servers) share one count.
func TestAttemptsConformance(t *testing.T) {
	storetest.RunAttempts(t, func(t *testing.T) (store.Attempts, store.Attempts) {
		url := pgtest.DatabaseURL(t)
		return open(t, url), open(t, url)
	})
}

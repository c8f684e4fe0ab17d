package pgstore_test

import (
	"testing"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/storetest"
)

func TestAccountsConformance(t *testing.T) {
	storetest.RunAccounts(t, func(t *testing.T) store.Store {
		return open(t, pgtest.DatabaseURL(t))
	})
}

package rolloutlog

import (
	"testing"

	"bakery.dev/bakery/api/store/pgstore/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

package main

import (
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/storetest"
)

// describe names the server reconciling the object when it holds a lease,
// and says nothing of leases otherwise.
func TestDescribeLease(t *testing.T) {
	now := time.Now()
	d := storetest.Deployment("hello", "/srv/hello")
	var b strings.Builder
	describeWithLease(&b, d, now, &api.Lease{Key: "Deployment/hello", Server: "cp-1-42-abcd", Since: api.NewTime(now.Add(-3 * time.Second))})
	if !strings.Contains(b.String(), "Reconciled by:") || !strings.Contains(b.String(), "cp-1-42-abcd (for 3s)") {
		t.Fatalf("describe with a lease:\n%s", b.String())
	}
	b.Reset()
	describeWithLease(&b, d, now, nil)
	if strings.Contains(b.String(), "Reconciled by") {
		t.Fatalf("describe without a lease:\n%s", b.String())
	}
}

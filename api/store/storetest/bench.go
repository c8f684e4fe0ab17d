package storetest

import (
	"fmt"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// BenchmarkApply measures applying a bundle of n deployments to s: the
// first iteration creates them, later ones change every spec (so each
// iteration writes n objects in one transaction).
func BenchmarkApply(b *testing.B, s store.Store, n int) {
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		objs := make([]api.Object, n)
		for j := range n {
			d := Deployment(fmt.Sprintf("app-%04d", j), "/srv/repo")
			d.Spec.KeepReleases = 1 + i%50
			objs[j] = d
		}
		if _, err := store.Apply(ctx, s, objs, store.ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(i), "ms/bundle")
}

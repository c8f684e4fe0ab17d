package analytics

import (
	"fmt"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/nodescript"
)

// FuzzParseAnalytics feeds the collector's parser what a node could print
// (a node is not trusted to be well-formed): it must never panic, and
// merged positions never go backwards within a block.
func FuzzParseAnalytics(f *testing.F) {
	f.Add([]byte("@app web\n@file 12 40 0 20\n1700000000.123|200|5|0.001\n\n@disk 1 2 3 4\n"))
	f.Add([]byte("@app web\n@old 11 30 10 20\n1700000000.123|404|5|0.001\n\n@file 12 5 0 5\n1|2|3\n@disk 0 0 0 0\n"))
	f.Add([]byte("@app a\n@file 1 2 3 -4\n"))
	f.Add([]byte("@file 1 1 1 1\nx\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		found, err := nodescript.ParseAnalytics(out)
		if err != nil {
			return
		}
		for _, ar := range found {
			nm := &api.NodeMetrics{}
			merge(ar, nm)
			if nm.Log.Offset < 0 {
				t.Fatalf("negative offset %d", nm.Log.Offset)
			}
		}
	})
}

// BenchmarkAnalyticsParse measures the control plane's side of a
// collection: parsing and aggregating access log lines (per line).
func BenchmarkAnalyticsParse(b *testing.B) {
	var lines strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&lines, "%d.%03d|%d|%d|0.%03d\n", 1700000000+i/20, i%1000, []int{200, 200, 200, 301, 404, 500}[i%6], 100+i%900, i%1000)
	}
	data := lines.String()
	out := []byte(fmt.Sprintf("@app web\n@file 7 %d 0 %d\n%s\n@disk 1 2 3 4\n", len(data), len(data), data))
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		found, err := nodescript.ParseAnalytics(out)
		if err != nil {
			b.Fatal(err)
		}
		nm := &api.NodeMetrics{}
		if n := merge(found["web"], nm); n != 10000 {
			b.Fatalf("%d lines", n)
		}
	}
}

package main

import (
	"os"
	"strings"
	"testing"
)

// TestReferenceUpToDate fails when docs/reference.md is not what genref
// writes for the current api types.
func TestReferenceUpToDate(t *testing.T) {
	want, err := Generate(apiDir())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("docs/reference.md is out of date: run `go run ./scripts/genref > docs/reference.md`")
	}
	// Spot checks that the generator sees what it should.
	for _, s := range []string{
		"| `spec.run.envFrom[].secretRef` | string |",
		"| `spec.healthCheck.retries` | integer | `10` |",
		"secret X is listed twice",
		"## Secret",
		"| `spec.port` | integer | `22` |",
	} {
		if !strings.Contains(string(want), s) {
			t.Errorf("the reference lacks %q", s)
		}
	}
}

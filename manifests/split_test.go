package manifests

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitYAML(t *testing.T) {
	type doc struct {
		Index, Line int
		Text        string
	}
	tests := []struct {
		name string
		in   string
		want []doc
	}{
		{"empty", "", nil},
		{"one, no marker", "a: 1\n", []doc{{1, 1, "a: 1\n"}}},
		{"leading comments and marker", "# c\n\n---\na: 1\n", []doc{{1, 4, "a: 1\n"}}},
		{"leading content counts", "a: 1\n---\nb: 2", []doc{{1, 1, "a: 1\n"}, {2, 3, "b: 2"}}},
		{"empty documents keep their index", "---\n---\n# c\n---\nb: 2\n---\n", []doc{{1, 2, ""}, {2, 3, "# c\n"}, {3, 5, "b: 2\n"}, {4, 7, ""}}},
		{"marker with comment, CRLF", "--- # first\r\na: 1\r\n---\r\nb: 2\r\n", []doc{{1, 2, "a: 1\r\n"}, {2, 4, "b: 2\r\n"}}},
		{"content on the marker line", "--- |\n  text\n--- {a: 1}", []doc{{1, 1, "    |\n  text\n"}, {2, 3, "    {a: 1}\n"}}},
		{"not markers", "a: ---\n----\n --- \nb: '\n---x'\n", []doc{{1, 1, "a: ---\n----\n --- \nb: '\n---x'\n"}}},
		{"document end", "a: 1\n...\n---\nb: 2\n...\n# end\n", []doc{{1, 1, "a: 1\n"}, {2, 4, "b: 2\n"}}},
		{"bare document after end", "a: 1\n...\nb: 2\n", []doc{{1, 1, "a: 1\n"}, {2, 3, "b: 2\n"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []doc
			for _, d := range splitYAML([]byte(tt.in)) {
				got = append(got, doc{d.index, d.line, string(d.text)})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("splitYAML(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

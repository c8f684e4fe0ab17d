package manifests

import (
	"bytes"
	"slices"

	yaml3 "go.yaml.in/yaml/v3"
)

// yaml11Bools are the plain scalars YAML 1.1 — the dialect the YAML to
// JSON conversion reads — takes as booleans while YAML 1.2 takes them as
// strings (true and false are booleans in both).
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true,
	"n": true, "N": true, "no": true, "No": true, "NO": true,
	"on": true, "On": true, "ON": true, "off": true, "Off": true, "OFF": true,
}

// quoteBoolKeys quotes the mapping keys of a YAML document that YAML 1.1
// would turn into the booleans true or false, so that a key keeps the text
// it was written with: `build: {on: each}` means the field "on", as it
// does in the reference and in YAML 1.2 (without this the key reads as
// "true", an unknown field). Values are left as they are. The text is
// patched in place, so line numbers in later errors stay right; a document
// that does not parse is returned as it is (the conversion reports why).
func quoteBoolKeys(text []byte) []byte {
	var root yaml3.Node
	if yaml3.Unmarshal(text, &root) != nil {
		return text
	}
	var keys []*yaml3.Node
	var walk func(n *yaml3.Node)
	walk = func(n *yaml3.Node) {
		if n.Kind == yaml3.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k := n.Content[i]; k.Kind == yaml3.ScalarNode && k.Style == 0 && yaml11Bools[k.Value] {
					keys = append(keys, k)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	if len(keys) == 0 {
		return text
	}
	// From the end, so that a patch does not move the next one.
	slices.SortFunc(keys, func(a, b *yaml3.Node) int {
		if a.Line != b.Line {
			return b.Line - a.Line
		}
		return b.Column - a.Column
	})
	lines := bytes.Split(text, []byte("\n"))
	for _, k := range keys {
		if k.Line < 1 || k.Line > len(lines) {
			continue
		}
		l, c := lines[k.Line-1], k.Column-1
		if c < 0 || c+len(k.Value) > len(l) || string(l[c:c+len(k.Value)]) != k.Value {
			continue // not where the parser said (a column in runes): left as YAML 1.1 reads it
		}
		patched := append(append(append([]byte{}, l[:c]...), '"'), k.Value...)
		lines[k.Line-1] = append(append(patched, '"'), l[c+len(k.Value):]...)
	}
	return bytes.Join(lines, []byte("\n"))
}

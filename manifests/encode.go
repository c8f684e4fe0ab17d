package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"bakery.dev/bakery/api"
	"sigs.k8s.io/yaml"
)

// wire is an object as written by Encode and EncodeJSON: fields in the
// Kubernetes order, status left out when empty.
type wire struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   *api.ObjectMeta `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
	Status     json.RawMessage `json:"status,omitempty"`
}

func toWire(o api.Object) (*wire, error) {
	if o == nil {
		return nil, errors.New("encode: nil object")
	}
	w := &wire{
		APIVersion: o.GetTypeMeta().APIVersion,
		Kind:       o.GetTypeMeta().Kind,
		Metadata:   o.GetObjectMeta(),
		Spec:       o.SpecJSON(),
		Status:     o.StatusJSON(),
	}
	if s := string(w.Status); s == "{}" || s == "null" {
		w.Status = nil
	}
	return w, nil
}

// Encode writes objs as YAML documents separated by "---\n", in the order
// given. Decode reads the result back into equal objects (status, which
// Decode ignores, aside).
func Encode(objs ...api.Object) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		w, err := toWire(o)
		if err != nil {
			return nil, err
		}
		j, err := json.Marshal(w)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", api.Ref(o), err)
		}
		y, err := yaml.JSONToYAML(escapeForYAML(j))
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", api.Ref(o), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(y)
	}
	return buf.Bytes(), nil
}

// EncodeJSON writes objs as indented JSON: one object as itself, any
// other number as a List {"apiVersion": "v1", "kind": "List", "items": […]}.
func EncodeJSON(objs ...api.Object) ([]byte, error) {
	ws := make([]*wire, len(objs))
	for i, o := range objs {
		w, err := toWire(o)
		if err != nil {
			return nil, err
		}
		ws[i] = w
	}
	var v any = ws
	if len(ws) == 1 {
		v = ws[0]
	} else {
		v = struct {
			APIVersion string  `json:"apiVersion"`
			Kind       string  `json:"kind"`
			Items      []*wire `json:"items"`
		}{"v1", "List", ws}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return append(b, '\n'), nil
}

// escapeForYAML rewrites, in JSON text, the characters JSON carries raw but
// YAML does not allow raw (DEL, the C1 controls but NEL, U+FFFE, U+FFFF)
// as \u escapes, so that JSONToYAML can read what json.Marshal wrote; the
// YAML emitter then writes them escaped. Outside strings JSON text holds
// only ASCII structure, so every such character is inside a string.
func escapeForYAML(j []byte) []byte {
	var out []byte
	for i := 0; i < len(j); {
		r, n := utf8.DecodeRune(j[i:])
		if r == 0x7f || (r >= 0x80 && r <= 0x9f && r != 0x85) || r == 0xfffe || r == 0xffff {
			if out == nil {
				out = append(make([]byte, 0, len(j)+16), j[:i]...)
			}
			out = fmt.Appendf(out, `\u%04x`, r)
		} else if out != nil {
			out = append(out, j[i:i+n]...)
		}
		i += n
	}
	if out == nil {
		return j
	}
	return out
}

package manifests

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// fieldError is a problem at a field path inside one document.
type fieldError struct {
	Field, Reason string
}

// checker compares a generic JSON tree (map[string]any, []any, string,
// json.Number, bool, nil) with the Go type it will be decoded into, and
// reports unknown fields and wrong types with their paths. encoding/json
// cannot do this itself: its unknown-field error carries no path, it
// matches keys case-insensitively and it stops at the first problem.
type checker struct {
	errs []fieldError
}

func (c *checker) add(path, format string, args ...any) {
	c.errs = append(c.errs, fieldError{Field: path, Reason: fmt.Sprintf(format, args...)})
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// check reports every mismatch between v and t under path.
func (c *checker) check(v any, t reflect.Type, path string) {
	// null leaves the target unchanged, as in encoding/json, except for
	// types that decode themselves (they are given the null below).
	if v == nil && !implements(t, jsonUnmarshalerType) {
		return
	}
	if t.Kind() == reflect.Pointer {
		if v == nil {
			return
		}
		c.check(v, t.Elem(), path)
		return
	}
	switch {
	case implements(t, jsonUnmarshalerType):
		b, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b)
		}
		if err != nil {
			c.add(path, "%s", unmarshalerReason(err))
		}
		return
	case implements(t, textUnmarshalerType):
		s, ok := v.(string)
		if !ok {
			c.add(path, "must be a string, not %s", describe(v))
			return
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			c.add(path, "%s", err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			c.add(path, "must be a mapping, not %s", describe(v))
			return
		}
		fields := fieldsOf(t)
		for _, k := range sortedKeys(m) {
			f, ok := fields.byName[k]
			if !ok {
				c.add(join(path, k), "unknown field%s", suggest(k, fields.names))
				continue
			}
			c.check(m[k], f, join(path, k))
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			c.add(path, "must be a mapping, not %s", describe(v))
			return
		}
		if t.Key().Kind() != reflect.String {
			// No Bakery type has such maps; let encoding/json judge.
			return
		}
		for _, k := range sortedKeys(m) {
			c.check(m[k], t.Elem(), join(path, k))
		}
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			if _, ok := v.(string); !ok {
				c.add(path, "must be a base64 string, not %s", describe(v))
			}
			return
		}
		l, ok := v.([]any)
		if !ok {
			c.add(path, "must be a list, not %s", describe(v))
			return
		}
		if t.Kind() == reflect.Array && len(l) > t.Len() {
			c.add(path, "must have at most %d items", t.Len())
		}
		for i, e := range l {
			c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			c.add(path, "must be a string, not %s%s", describe(v), quoteHint(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			c.add(path, "must be true or false, not %s", describe(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			c.add(path, "must be an integer, not %s", describe(v))
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			c.add(path, "%s", intReason(n, err))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := v.(json.Number)
		if !ok {
			c.add(path, "must be a non-negative integer, not %s", describe(v))
			return
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			c.add(path, "%s", intReason(n, err))
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			c.add(path, "must be a number, not %s", describe(v))
			return
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			c.add(path, "number %s is out of range", n)
		}
	case reflect.Interface:
		// Anything goes.
	default:
		c.add(path, "cannot be decoded (unsupported type %s)", t)
	}
}

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

// unmarshalerReason returns the reason of a json.Unmarshaler's error. The
// api types return plain-text reasons; a json.UnmarshalTypeError from a
// nested decode is turned into the same wording as ours.
func unmarshalerReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("must be of type %s, not %s", te.Type, te.Value)
	}
	return err.Error()
}

func intReason(n json.Number, err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Sprintf("integer %s is out of range", n)
	}
	return fmt.Sprintf("must be an integer, not %s", n)
}

// describe names the JSON type of v for messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean (" + strconv.FormatBool(v) + ")"
	case json.Number:
		return "a number (" + string(v) + ")"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}

// quoteHint helps with YAML's implicit typing: 8080, yes and on are not
// strings unless quoted.
func quoteHint(v any) string {
	switch v.(type) {
	case bool, json.Number:
		return "; quote the value in YAML"
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// suggest returns ` (did you mean "x"?)` for the known name closest to k,
// or "" when none is close.
func suggest(k string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if strings.EqualFold(n, k) {
			best = n
			break
		}
		if d := distance(strings.ToLower(k), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance of a and b (field names are short).
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// structFields are the JSON fields of a struct type, as encoding/json sees
// them (embedded structs without a JSON name are flattened into their
// parent).
type structFields struct {
	byName map[string]reflect.Type
	names  []string
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	fs := &structFields{byName: map[string]reflect.Type{}}
	collectFields(t, fs, 0)
	sort.Strings(fs.names)
	f, _ := fieldCache.LoadOrStore(t, fs)
	return f.(*structFields)
}

func collectFields(t reflect.Type, fs *structFields, depth int) {
	// Fields of t come first, then those of embedded structs: the
	// shallower field wins, as in encoding/json.
	var embedded []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, dup := fs.byName[name]; dup {
			continue
		}
		fs.byName[name] = sf.Type
		fs.names = append(fs.names, name)
	}
	if depth < 10 {
		for _, et := range embedded {
			collectFields(et, fs, depth+1)
		}
	}
}

package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"bakery.dev/bakery/api"
	"sigs.k8s.io/yaml"
)

// Decode decodes a bundle strictly: YAML (one or many documents separated
// by ---) or JSON (one object, a JSON array of objects, or
// {"apiVersion":"v1"|"bakery.dev/v1","kind":"List","items":[...]}). A
// YAML document may also be such a List.
//
// It does not default or validate specs (see Check). Empty documents (only
// comments and whitespace) are skipped. The status of an object is
// accepted and ignored.
//
// The error is an Errors holding every problem found; when there is any,
// no objects are returned.
func Decode(data []byte) ([]api.Object, error) { return DecodeSource("", data) }

// DecodeSource is Decode with source ("app.yaml", "-" for stdin) filled
// in the errors.
func DecodeSource(source string, data []byte) ([]api.Object, error) {
	d := newDecoder()
	d.decode(source, data)
	return d.result()
}

// location is where an object was found, to name both places of a
// duplicate.
type location struct {
	source string
	index  int
	field  string // "items[2]" inside a YAML List, else ""
}

// decoder decodes one bundle, which may span several sources (Load of a
// directory).
type decoder struct {
	errs errList
	objs []api.Object
	seen map[string]location // "Kind/name" → first place seen
}

func newDecoder() *decoder { return &decoder{seen: map[string]location{}} }

// stop reports whether decoding should stop because enough problems have
// been found; the error then says that some were left out.
func (d *decoder) stop() bool {
	if d.errs.full() {
		d.errs.truncated = true
		return true
	}
	return false
}

func (d *decoder) result() ([]api.Object, error) {
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return d.objs, nil
}

var utf8BOM = []byte("\xef\xbb\xbf")

func (d *decoder) decode(source string, data []byte) {
	if len(data) > MaxBytes {
		d.errs.add(tooLarge(source))
		return
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if i := bytes.IndexByte(data, 0); i >= 0 {
		line, col := position(data, i)
		d.errs.add(&Error{Source: source, Reason: fmt.Sprintf("contains a NUL byte at line %d, column %d: not a text file", line, col)})
		return
	}
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		line, col := position(data, i)
		d.errs.add(&Error{Source: source, Reason: fmt.Sprintf("invalid UTF-8 at line %d, column %d", line, col)})
		return
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		d.decodeJSON(source, data)
		return
	}
	d.decodeYAML(source, data)
}

func tooLarge(source string) *Error {
	return &Error{
		Source: source,
		Reason: fmt.Sprintf("%s: input is larger than the limit of %d MiB", ErrTooLarge, MaxBytes>>20),
		Err:    ErrTooLarge,
	}
}

// position returns the 1-based line and column (in bytes) of offset off.
func position(data []byte, off int) (line, col int) {
	off = min(off, len(data))
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	return line, off - bytes.LastIndexByte(data[:off], '\n')
}

// yamlDoc is one document of a YAML stream.
type yamlDoc struct {
	index int    // 1-based
	line  int    // line of text's first line in the source
	text  []byte // the document, without its --- line
}

// splitYAML splits a YAML stream into documents at "---" lines (a
// directives-end marker may carry content after it: "--- |") and "..."
// lines (document end). Text before the first "---" or after a "..." is a
// document only if it holds more than comments and whitespace; a "---"
// always starts one, so that indexes match what a reader counts.
func splitYAML(data []byte) []yamlDoc {
	var docs []yamlDoc
	var (
		start, startLine = 0, 1
		explicit         = false
		head             []byte // content after "---" on the marker line
	)
	flush := func(end int) {
		text := data[start:end]
		if head != nil {
			text = append(append(bytes.Repeat([]byte(" "), 3), head...), text...)
		}
		if explicit || hasContent(text) {
			docs = append(docs, yamlDoc{index: len(docs) + 1, line: startLine, text: text})
		}
	}
	line := 1
	for off := 0; off < len(data); line++ {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
		}
		l := data[off:next]
		switch {
		case isMarker(l, "---"):
			flush(off)
			start, startLine, explicit, head = next, line+1, true, nil
			if rest := bytes.TrimSpace(l[3:]); len(rest) > 0 && rest[0] != '#' {
				// "--- |", "--- {a: 1}": keep the content, in its column.
				head, startLine = l[3:], line
				if next == len(data) && !bytes.HasSuffix(head, []byte("\n")) {
					head = append(head[:len(head):len(head)], '\n')
				}
			}
		case isMarker(l, "..."):
			flush(off)
			start, startLine, explicit, head = next, line+1, false, nil
		}
		off = next
	}
	flush(len(data))
	return docs
}

func isMarker(line []byte, m string) bool {
	if !bytes.HasPrefix(line, []byte(m)) {
		return false
	}
	return len(line) == len(m) || strings.IndexByte(" \t\r\n", line[len(m)]) >= 0
}

// hasContent reports whether a YAML text holds more than comments,
// whitespace and directives.
func hasContent(text []byte) bool {
	for l := range bytes.SplitSeq(text, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' && l[0] != '%' {
			return true
		}
	}
	return false
}

func (d *decoder) decodeYAML(source string, data []byte) {
	for _, doc := range splitYAML(data) {
		if d.stop() {
			return
		}
		if !hasContent(doc.text) {
			continue
		}
		j, err := yaml.YAMLToJSONStrict(quoteBoolKeys(doc.text))
		if err != nil {
			for _, r := range yamlReasons(err, doc.line) {
				d.errs.add(&Error{Source: source, Index: doc.index, Reason: r})
			}
			continue
		}
		p := jsonParser{dec: json.NewDecoder(bytes.NewReader(j))}
		p.dec.UseNumber()
		tree, err := p.value(nil)
		if err != nil {
			// The YAML library wrote this JSON; failure is a bug.
			d.errs.add(&Error{Source: source, Index: doc.index, Reason: fmt.Sprintf("internal error: YAML converted to bad JSON: %v", err)})
			continue
		}
		d.document(source, doc.index, "", tree, true)
	}
}

var yamlLineRE = regexp.MustCompile(`\bline (\d+)`)

// yamlReasons turns an error of the YAML library into reasons, one per
// problem, with line numbers counted from the start of the source rather
// than of the document.
func yamlReasons(err error, firstLine int) []string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var rs []string
	if rest, ok := strings.CutPrefix(msg, "unmarshal errors:\n"); ok {
		for l := range strings.SplitSeq(rest, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				rs = append(rs, l)
			}
		}
	} else {
		rs = []string{msg}
	}
	for i, r := range rs {
		r = yamlLineRE.ReplaceAllStringFunc(r, func(s string) string {
			n, err := strconv.Atoi(s[len("line "):])
			if err != nil {
				return s
			}
			return fmt.Sprintf("line %d", n+firstLine-1)
		})
		rs[i] = "invalid YAML: " + r
	}
	return rs
}

// maxDepth bounds the nesting of JSON input; Bakery's types are far
// shallower.
const maxDepth = 100

// jsonParser reads one JSON value into a generic tree (map[string]any,
// []any, string, json.Number, bool, nil), recording duplicate keys, which
// encoding/json silently accepts.
type jsonParser struct {
	dec   *json.Decoder
	depth int
	dups  [][]string // paths of duplicate keys: keys and "[i]"
}

func (p *jsonParser) value(path []string) (any, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if p.depth++; p.depth > maxDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", maxDepth)
	}
	defer func() { p.depth-- }()
	path = path[:len(path):len(path)] // appends below must copy
	switch delim {
	case '{':
		m := map[string]any{}
		for p.dec.More() {
			kt, err := p.dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := p.value(append(path, k))
			if err != nil {
				return nil, err
			}
			if _, dup := m[k]; dup {
				p.dups = append(p.dups, append(path, k))
			}
			m[k] = v
		}
		_, err := p.dec.Token()
		return m, err
	case '[':
		l := []any{}
		for i := 0; p.dec.More(); i++ {
			v, err := p.value(append(path, "["+strconv.Itoa(i)+"]"))
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := p.dec.Token()
		return l, err
	}
	return nil, fmt.Errorf("unexpected %v", delim)
}

// pathString formats path elements: keys joined by dots, indexes appended.
func pathString(path []string) string {
	var b strings.Builder
	for _, e := range path {
		if b.Len() > 0 && !strings.HasPrefix(e, "[") {
			b.WriteByte('.')
		}
		b.WriteString(e)
	}
	return b.String()
}

func (d *decoder) decodeJSON(source string, data []byte) {
	p := jsonParser{dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	tree, err := p.value(nil)
	if err != nil {
		off := int(p.dec.InputOffset())
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = int(se.Offset)
		}
		reason := err.Error()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			reason, off = "unexpected end of input", len(data)
		}
		line, col := position(data, off)
		d.errs.add(&Error{Source: source, Reason: fmt.Sprintf("invalid JSON at line %d, column %d: %s (input starting with { or [ is read as JSON)", line, col, reason)})
		return
	}
	off := int(p.dec.InputOffset())
	if _, err := p.dec.Token(); err != io.EOF {
		rest := bytes.TrimLeft(data[off:], " \t\r\n")
		line, col := position(data, len(data)-len(rest))
		d.errs.add(&Error{Source: source, Reason: fmt.Sprintf("invalid JSON at line %d, column %d: unexpected data after the top-level value", line, col)})
		return
	}

	// Which document a duplicate key is in depends on the shape of the
	// input: items of an array or List are documents of their own.
	m, isMap := tree.(map[string]any)
	list, isList := tree.([]any)
	isListKind := isMap && m["kind"] == "List"
	dups := map[int][]string{} // document index (0: the List itself) → paths
	for _, path := range p.dups {
		idx, rest := 1, path
		switch {
		case isList:
			idx, rest = arrayIndex(path[0])+1, path[1:]
		case isListKind && len(path) >= 2 && path[0] == "items":
			idx, rest = arrayIndex(path[1])+1, path[2:]
		case isListKind:
			idx = 0
		}
		dups[idx] = append(dups[idx], pathString(rest))
	}
	addDups := func(idx int) {
		for _, f := range dups[idx] {
			d.errs.add(&Error{Source: source, Index: idx, Field: f, Reason: "duplicate key"})
		}
	}

	switch {
	case isList:
		for i, item := range list {
			if d.stop() {
				return
			}
			addDups(i + 1)
			d.document(source, i+1, "", item, false)
		}
	case isListKind:
		addDups(0)
		d.list(source, 0, m)
		if items, ok := m["items"].([]any); ok {
			for i, item := range items {
				if d.stop() {
					return
				}
				addDups(i + 1)
				d.document(source, i+1, "", item, false)
			}
		}
	default:
		addDups(1)
		d.document(source, 1, "", tree, false)
	}
}

func arrayIndex(e string) int {
	n, _ := strconv.Atoi(strings.Trim(e, "[]"))
	return n
}

// list checks the wrapper of a List (not its items) found at index.
func (d *decoder) list(source string, index int, m map[string]any) {
	add := func(field, format string, args ...any) {
		d.errs.add(&Error{Source: source, Index: index, Kind: "List", Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "kind":
		case "apiVersion":
			if v != "v1" && v != api.APIVersion {
				add(k, `must be "v1" or %q for a List, not %s`, api.APIVersion, describeValue(v))
			}
		case "metadata":
			// kubectl writes {resourceVersion: ""}; nothing in it matters.
			if _, ok := v.(map[string]any); !ok && v != nil {
				add(k, "must be a mapping, not %s", describe(v))
			}
		case "items":
			if _, ok := v.([]any); !ok && v != nil {
				add(k, "must be a list of objects, not %s", describe(v))
			}
		default:
			add(k, "unknown field%s", suggest(k, []string{"apiVersion", "items", "kind", "metadata"}))
		}
	}
	if _, ok := m["apiVersion"]; !ok {
		add("apiVersion", `is required: "v1" or %q`, api.APIVersion)
	}
}

// describeValue quotes strings and describes other values.
func describeValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return describe(v)
}

// document decodes one document (or item of a List) found at index;
// prefix is the path of an item inside a YAML List ("items[2]").
func (d *decoder) document(source string, index int, prefix string, tree any, allowList bool) {
	m, ok := tree.(map[string]any)
	if !ok {
		d.errs.add(&Error{Source: source, Index: index, Field: prefix,
			Reason: fmt.Sprintf("must be a mapping with apiVersion, kind, metadata and spec, not %s", describe(tree))})
		return
	}
	if allowList && m["kind"] == "List" {
		d.list(source, index, m)
		if items, ok := m["items"].([]any); ok {
			for i, item := range items {
				d.document(source, index, fmt.Sprintf("items[%d]", i), item, false)
			}
		}
		return
	}
	obj, kind, name, ferrs := decodeObject(m)
	for _, fe := range ferrs {
		d.errs.add(&Error{Source: source, Index: index, Kind: kind, Name: name, Field: joinPath(prefix, fe.Field), Reason: fe.Reason})
	}
	if obj == nil || len(ferrs) > 0 {
		return
	}
	// A nameless object is kept: Check reports its missing name.
	if name != "" {
		key := kind + "/" + name
		if first, dup := d.seen[key]; dup {
			d.errs.add(&Error{Source: source, Index: index, Kind: kind, Name: name, Field: joinPath(prefix, "metadata.name"),
				Reason: fmt.Sprintf("%s is defined twice: also in %s", key, first.describe(source))})
			return
		}
		d.seen[key] = location{source: source, index: index, field: prefix}
	}
	d.objs = append(d.objs, obj)
}

func joinPath(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

// describe names l for a message about something in source.
func (l location) describe(source string) string {
	s := fmt.Sprintf("document %d", l.index)
	if l.source != source && l.source != "" {
		s = l.source + " " + s
	}
	if l.field != "" {
		s += " " + l.field
	}
	return s
}

// decodeObject decodes one object strictly. It returns the object (nil
// when the kind is unknown or any problem was found), the kind and name
// when they can be read, and every problem found.
func decodeObject(m map[string]any) (obj api.Object, kind, name string, errs []fieldError) {
	kind, _ = m["kind"].(string)
	if md, ok := m["metadata"].(map[string]any); ok {
		name, _ = md["name"].(string)
	}
	known := strings.Join(api.Kinds(), ", ")

	if av, ok := m["apiVersion"]; !ok || av == nil {
		errs = append(errs, fieldError{"apiVersion", fmt.Sprintf("is required: %q", api.APIVersion)})
	} else if av != api.APIVersion {
		errs = append(errs, fieldError{"apiVersion", fmt.Sprintf("must be %q, not %s", api.APIVersion, describeValue(av))})
	}
	switch kv, ok := m["kind"]; {
	case !ok || kv == nil:
		errs = append(errs, fieldError{"kind", "is required: one of " + known})
	case kind == "":
		errs = append(errs, fieldError{"kind", fmt.Sprintf("must be one of %s, not %s", known, describeValue(kv))})
	default:
		o, err := api.New(kind)
		if err != nil {
			errs = append(errs, fieldError{"kind", fmt.Sprintf("unknown kind %q (known kinds: %s)", kind, known)})
			kind = ""
		} else {
			obj = o
		}
	}
	if obj == nil {
		return nil, kind, name, errs
	}

	// apiVersion and kind were checked above and are already set by
	// api.New; status is written by the control plane only, so a status
	// in a manifest (from "get -o yaml") is ignored.
	rest := make(map[string]any, len(m))
	for k, v := range m {
		switch k {
		case "apiVersion", "kind", "status":
		default:
			rest[k] = v
		}
	}
	var c checker
	c.check(rest, reflect.TypeOf(obj).Elem(), "")
	errs = append(errs, c.errs...)
	if len(errs) > 0 {
		return nil, kind, name, errs
	}
	b, err := json.Marshal(rest)
	if err == nil {
		err = json.Unmarshal(b, obj)
	}
	if err != nil {
		// The check above should have caught whatever encoding/json
		// refuses; report it rather than lose it.
		return nil, kind, name, []fieldError{{"", err.Error()}}
	}
	return obj, kind, name, nil
}

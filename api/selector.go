package api

import (
	"fmt"
	"sort"
	"strings"
)

// Selector matches objects by their labels. The zero Selector matches
// everything.
type Selector struct {
	reqs []requirement
}

type requirement struct {
	key, value string
	op         string // "=", "!=", "exists", "!exists"
}

// ParseSelector parses a kubectl-style selector: "app=web,tier!=db,env,!old".
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	s = strings.TrimSpace(s)
	if s == "" {
		return sel, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		var r requirement
		switch {
		case strings.Contains(part, "!="):
			k, v, _ := strings.Cut(part, "!=")
			r = requirement{strings.TrimSpace(k), strings.TrimSpace(v), "!="}
		case strings.Contains(part, "=="):
			k, v, _ := strings.Cut(part, "==")
			r = requirement{strings.TrimSpace(k), strings.TrimSpace(v), "="}
		case strings.Contains(part, "="):
			k, v, _ := strings.Cut(part, "=")
			r = requirement{strings.TrimSpace(k), strings.TrimSpace(v), "="}
		case strings.HasPrefix(part, "!"):
			r = requirement{key: strings.TrimSpace(part[1:]), op: "!exists"}
		default:
			r = requirement{key: part, op: "exists"}
		}
		if !labelKey.MatchString(r.key) {
			return Selector{}, fmt.Errorf("selector %q: invalid label key %q", s, r.key)
		}
		if !labelValue.MatchString(r.value) {
			return Selector{}, fmt.Errorf("selector %q: invalid label value %q", s, r.value)
		}
		sel.reqs = append(sel.reqs, r)
	}
	return sel, nil
}

// SelectorFromMap returns a selector requiring every key=value of m.
func SelectorFromMap(m map[string]string) Selector {
	var sel Selector
	for k, v := range m {
		sel.reqs = append(sel.reqs, requirement{k, v, "="})
	}
	sort.Slice(sel.reqs, func(i, j int) bool { return sel.reqs[i].key < sel.reqs[j].key })
	return sel
}

// Empty reports whether the selector matches everything.
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s.reqs {
		v, ok := labels[r.key]
		switch r.op {
		case "=":
			if !ok || v != r.value {
				return false
			}
		case "!=":
			if ok && v == r.value {
				return false
			}
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		}
	}
	return true
}

// String returns the selector in the form ParseSelector reads.
func (s Selector) String() string {
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		switch r.op {
		case "exists":
			parts[i] = r.key
		case "!exists":
			parts[i] = "!" + r.key
		default:
			parts[i] = r.key + r.op + r.value
		}
	}
	return strings.Join(parts, ",")
}

package manifests

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is one problem found in a manifest.
type Error struct {
	// Source is the file name, "-" for stdin, "" when unknown.
	Source string
	// Index is the 1-based index of the document in the source (for JSON,
	// of the item in a top-level array or List); 0 when the problem is not
	// in one document (the input is too large, not valid JSON, …).
	Index int
	// Kind and Name identify the object, when known.
	Kind, Name string
	// Field is the path of the field ("spec.run.port",
	// "spec.run.env[2].name"), "" when the problem is the whole document.
	Field string
	// Reason says what is wrong.
	Reason string
	// Err is the underlying error, if any (an I/O error, ErrTooLarge), so
	// that errors.Is works through Errors.
	Err error
}

// Error returns the problem in the form
//
//	app.yaml: document 2 (Deployment/web): spec.run.port: must be 1-65534
func (e *Error) Error() string {
	var b strings.Builder
	sep := func() {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
	}
	if e.Source != "" {
		b.WriteString(e.Source)
	}
	ref := e.Kind
	if e.Name != "" {
		if ref == "" {
			ref = "?"
		}
		ref += "/" + e.Name
	}
	if e.Index > 0 {
		sep()
		b.WriteString("document ")
		b.WriteString(strconv.Itoa(e.Index))
		if ref != "" {
			b.WriteString(" (" + ref + ")")
		}
	} else if ref != "" {
		sep()
		b.WriteString(ref)
	}
	if e.Field != "" {
		sep()
		b.WriteString(e.Field)
	}
	sep()
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in a bundle. Functions of this package
// that return Errors never return an empty one: nil means no problem.
type Errors []*Error

// Error joins the problems, one a line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ErrTooLarge is the underlying error of an input larger than MaxBytes.
var ErrTooLarge = errors.New("manifest too large")

// MaxBytes is the largest input (one file, or stdin) Decode and Load read.
const MaxBytes = 4 << 20

// maxErrors caps the problems reported for one bundle, so that a large
// broken input costs neither megabytes of messages nor the time to decode
// all of it.
const maxErrors = 100

// errList collects problems up to maxErrors.
type errList struct {
	es        Errors
	truncated bool // problems were left out
}

func (l *errList) add(e *Error) {
	if l.full() {
		l.truncated = true
		return
	}
	l.es = append(l.es, e)
}

// full reports whether no more problems will be kept: decoding may stop.
func (l *errList) full() bool { return len(l.es) >= maxErrors }

func (l *errList) err() error {
	if len(l.es) == 0 {
		return nil
	}
	es := l.es
	if l.truncated {
		es = append(es[:len(es):len(es)], &Error{Reason: fmt.Sprintf("too many problems: stopped after the first %d", maxErrors)})
	}
	return es
}

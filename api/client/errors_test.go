package client

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeError(t *testing.T) {
	// A JSON error body as the server writes it.
	err := decodeError(409, []byte(`{"code":409,"message":"host taken","details":[{"field":"spec.ingress.hosts[0]","reason":"claimed by web"}]}`))
	if !IsConflict(err) || IsNotFound(err) {
		t.Errorf("IsConflict(%v) false", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || len(ae.Details) != 1 || ae.Details[0].Field != "spec.ingress.hosts[0]" {
		t.Errorf("details of %#v", err)
	}
	// Not our body (a proxy): the status line decides, the text is kept.
	err = decodeError(502, []byte("<html>502 Bad Gateway</html>"))
	if !errors.As(err, &ae) || ae.Code != 502 || !strings.Contains(ae.Message, "Bad Gateway") {
		t.Errorf("proxy answer: %#v", err)
	}
	// A body claiming another code than the status line.
	err = decodeError(404, []byte(`{"code":200,"message":"gone"}`))
	if !IsNotFound(err) {
		t.Errorf("IsNotFound(%v) false", err)
	}
}

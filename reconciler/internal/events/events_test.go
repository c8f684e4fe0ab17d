package events

import (
	"strconv"
	"strings"
	"testing"
)

func TestNewEventID(t *testing.T) {
	a, b := newEventID(), newEventID()
	ns, rnd, ok := strings.Cut(a, "-")
	if _, err := strconv.ParseInt(ns, 10, 64); err != nil || !ok || len(rnd) != 8 || a == b {
		t.Fatalf("ids %q %q", a, b)
	}
}

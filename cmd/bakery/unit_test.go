package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTargets(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []target
	}{
		{[]string{"nodes"}, []target{{kind: "Node"}}},
		{[]string{"deploy", "a", "b"}, []target{{"Deployment", "a"}, {"Deployment", "b"}}},
		{[]string{"no,deployments"}, []target{{kind: "Node"}, {kind: "Deployment"}}},
		{[]string{"node/web-1", "Deployment/hello"}, []target{{"Node", "web-1"}, {"Deployment", "hello"}}},
	} {
		got, err := parseTargets(tc.args, false)
		if err != nil {
			t.Errorf("parseTargets(%q): %v", tc.args, err)
			continue
		}
		if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(target{})); d != "" {
			t.Errorf("parseTargets(%q) (-want +got):\n%s", tc.args, d)
		}
	}
	for _, args := range [][]string{nil, {"pods"}, {"node/"}, {"node/a", "b"}, {"nodes", "x/y"}} {
		if _, err := parseTargets(args, false); err == nil {
			t.Errorf("parseTargets(%q) succeeded", args)
		}
	}
	if _, err := parseTargets([]string{"nodes"}, true); err == nil {
		t.Error("parseTargets without a name succeeded with needName")
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"4MiB": 4 << 20, "512KiB": 512 << 10, "1000": 1000, "2MB": 2000000, "1 GiB": 1 << 30, "10k": 10000} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "4XB", "MiB", "99999999999999999999"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) succeeded", in)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Second: "5s", 90 * time.Second: "90s", 5*time.Minute + 3*time.Second: "5m3s",
		45 * time.Minute: "45m", 5*time.Hour + 10*time.Minute: "5h10m", 30 * time.Hour: "30h",
		50 * time.Hour: "2d2h", 30 * 24 * time.Hour: "30d", -5 * time.Second: "<invalid>",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestBannerHost(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:8080": "127.0.0.1:8080", "0.0.0.0:80": "127.0.0.1:80", "[::]:80": "127.0.0.1:80", "[::1]:8080": "[::1]:8080"} {
		if got := bannerHost(in); got != want {
			t.Errorf("bannerHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestColorizer(t *testing.T) {
	on, err := newColorizer(io.Discard, "always")
	if err != nil {
		t.Fatal(err)
	}
	if got := on.node("web-1"); got == "web-1" || !strings.HasSuffix(got, "web-1\x1b[0m") {
		t.Fatalf("node color %q", got)
	}
	if first, again := on.node("web-1"), on.node("web-1"); first != again {
		t.Fatal("a node must keep its color")
	}
	if got := on.stream("stderr"); !strings.HasPrefix(got, "\x1b[31m") {
		t.Fatalf("stderr color %q", got)
	}
	if on.stream("stdout") != "stdout" {
		t.Fatal("stdout is not colored")
	}
	// auto: not a terminal → plain.
	off, _ := newColorizer(&strings.Builder{}, "auto")
	if off.node("web-1") != "web-1" || off.stream("stderr") != "stderr" {
		t.Fatal("auto colored output that is not a terminal")
	}
	never, _ := newColorizer(io.Discard, "never")
	if never.node("x") != "x" {
		t.Fatal("never colored")
	}
	if _, err := newColorizer(io.Discard, "sometimes"); err == nil {
		t.Fatal("bad --color accepted")
	}
}
